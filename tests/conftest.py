"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def llem_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary llem cache for the whole session: ``LLEM_CACHE_DIR`` points at it until the session
    ends, in subprocesses too, so that models, the report's vega bundle and locks never touch the user's."""
    previous = os.environ.get("LLEM_CACHE_DIR")
    folder = tmp_path_factory.mktemp("llem-cache")
    os.environ["LLEM_CACHE_DIR"] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop("LLEM_CACHE_DIR", None)
        else:
            os.environ["LLEM_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def tiny_model_path(llem_cache: Path) -> str:
    """The folder of llem-tiny, prepared into the session's llem cache (so ``model=llem-tiny`` resolves
    there)."""
    from llem.models import prepare

    return str(prepare("llem-tiny"))
