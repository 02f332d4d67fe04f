"""Results: the typed result (``schema``) with its one writer and reader (``codec``), atomic files, and
study tables (``llem.results.load(DIR)``)."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``load`` imports pandas only when it is used."""
    if name == "load":
        from llem.results.summary import load

        return load
    raise AttributeError(name)
