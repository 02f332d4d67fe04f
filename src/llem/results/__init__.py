"""Results: the typed result (``schema``) with its one writer and reader (``codec``), atomic files, and
tables of runs across study, sweep and single-run folders (``llem.results.load(PATHS)``)."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``load`` (:func:`llem.results.collect.load_runs`) imports pandas only when it is used."""
    if name == "load":
        from llem.results.collect import load_runs

        return load_runs
    raise AttributeError(name)
