"""The unit of work an engine measures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    """One prompt: its text, its group label, and (synthetic prompts only) an exact output length."""

    text: str
    # category or group label (a record's ``source`` field); None when the dataset has none
    source: str | None = None
    # exact output length in tokens; set only by the synthetic dataset
    max_new_tokens: int | None = None
