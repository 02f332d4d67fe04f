"""llem's own prompt set, shipped in the package (``data/builtin_prompts.jsonl``; works offline)."""

from __future__ import annotations

from importlib.resources import files

from llem.datasets import jsonl
from llem.datasets.prompt import Prompt

RESOURCE = "data/builtin_prompts.jsonl"


def load() -> list[Prompt]:
    """Every built-in prompt in file order (categories interleaved), labelled with its category."""
    text = (files("llem.datasets") / RESOURCE).read_text(encoding="utf-8")
    return jsonl.parse(text, f"llem.datasets/{RESOURCE}", prompt_field="prompt")
