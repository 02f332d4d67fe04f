"""JSON-lines prompt files: one JSON object per line, the prompt in a detected or named field."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llem.datasets.prompt import Prompt
from llem.errors import DatasetError

# searched in this order when dataset.prompt_field is not set
PROMPT_FIELDS = ("prompt", "text", "instruction", "input", "question")
# a record holding this key is a header (llem's provenance line), not a prompt
HEADER_KEY = "_provenance"


def load(path: Path, prompt_field: str | None) -> list[Prompt]:
    """The prompts of the JSON-lines file at ``path``, in file order."""
    check_file(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: a byte-order mark some editors write is dropped
    except UnicodeDecodeError as err:
        raise DatasetError(f"dataset file {path} is not UTF-8 text ({err}); save it as UTF-8 JSON lines") from err
    return parse(text, str(path), prompt_field)


def check_file(path: Path) -> None:
    """A DatasetError unless ``path`` is an existing file."""
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise DatasetError(f"dataset file {path} {problem}; check dataset.source (a .jsonl path or a built-in)")


def parse(text: str, where: str, prompt_field: str | None) -> list[Prompt]:
    """The prompts of JSON-lines ``text``; ``where`` names the file in error messages."""
    records = read_records(text, where)
    field = detect_field([record for _, record in records], where, prompt_field)
    prompts = []
    for line, record in records:
        prompt = record_prompt(record, field, f"{where} line {line}")
        if prompt is not None:
            prompts.append(prompt)
    if not prompts:
        raise DatasetError(
            f"dataset file {where}: every '{field}' value is empty; fill them or set dataset.prompt_field"
        )
    return prompts


def read_records(text: str, where: str) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for each non-blank, non-header line (line numbers start at 1)."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetError(
                f"dataset file {where} line {number} is not valid JSON ({err.msg}); fix that line"
            ) from err
        if not isinstance(record, dict):
            raise DatasetError(
                f"dataset file {where} line {number} is a JSON {type(record).__name__}, not an object; "
                'write one object per line, e.g. {"prompt": "..."}'
            )
        if HEADER_KEY not in record:
            records.append((number, record))
    if not records:
        raise DatasetError(
            f"dataset file {where} is empty (no JSON records); add one object per line, or fix dataset.source"
        )
    return records


def detect_field(records: Sequence[Mapping[str, Any]], where: str, prompt_field: str | None) -> str:
    """The prompt field: ``prompt_field`` if a record has it, else the first of ``PROMPT_FIELDS`` that every
    record has, else the first that any record has (a record without it is then reported by line)."""
    found = list(dict.fromkeys(key for record in records for key in record))
    if prompt_field is not None:
        if prompt_field in found:
            return prompt_field
        raise DatasetError(
            f"dataset {where} has no field dataset.prompt_field={prompt_field!r}; fields found: {', '.join(found)}"
        )
    in_all = [field for field in PROMPT_FIELDS if all(field in record for record in records)]
    in_any = [field for field in PROMPT_FIELDS if field in found]
    if in_all or in_any:
        return (in_all or in_any)[0]
    raise DatasetError(
        f"dataset {where} has none of the prompt fields {', '.join(PROMPT_FIELDS)} (fields found: {', '.join(found)}); "
        "set dataset.prompt_field to the field that holds the prompt"
    )


def record_prompt(record: Mapping[str, Any], field: str, where: str) -> Prompt | None:
    """The prompt of one record; None when its text is empty or whitespace."""
    if field not in record:
        raise DatasetError(f"dataset {where} has no field '{field}'; add it or remove the record")
    value = record[field]
    if not isinstance(value, str):
        raise DatasetError(
            f"dataset {where}: field '{field}' is a {type(value).__name__}, not a string; "
            "fix the record or set dataset.prompt_field to a text field"
        )
    if not value.strip():
        return None
    label = record.get("source")
    return Prompt(text=value, source=None if label is None else str(label))
