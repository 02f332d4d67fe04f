"""The recorded TensorRT-LLM 1.2.1 API (``tests/facts/tensorrt_llm_1_2_1.json``) as the fake reads it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

FACTS_FILE = Path(__file__).resolve().parents[2] / "facts" / "tensorrt_llm_1_2_1.json"


@functools.cache
def facts() -> dict[str, Any]:
    return json.loads(FACTS_FILE.read_text())


def fields(section: str) -> dict[str, dict[str, Any]]:
    """The fields of one recorded class (its entries that describe a field, not its rules and notes)."""
    return {name: spec for name, spec in facts()[section].items() if isinstance(spec, dict)}


def default(spec: dict[str, Any]) -> Any:
    """A field's recorded default; None for a required field or a default made by a factory."""
    value = spec.get("default")
    return None if isinstance(value, str) and (value == "required" or value.endswith("()")) else value


def llm_fields(args_class: str) -> dict[str, dict[str, Any]]:
    """Fields of ``TorchLlmArgs`` or ``TrtLlmArgs``: BaseLlmArgs' and the class's own."""
    return {**fields("BaseLlmArgs"), **fields(args_class)}
