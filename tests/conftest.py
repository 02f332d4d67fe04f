"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The folder of llem-tiny, prepared into a temporary llem cache for the whole session.

    ``LLEM_CACHE_DIR`` points at that cache until the session ends, so ``model=llem-tiny`` resolves there,
    in subprocesses too, and the user's cache is never touched.
    """
    from llem.models import prepare

    previous = os.environ.get("LLEM_CACHE_DIR")
    os.environ["LLEM_CACHE_DIR"] = str(tmp_path_factory.mktemp("llem-cache"))
    try:
        yield str(prepare("llem-tiny"))
    finally:
        if previous is None:
            os.environ.pop("LLEM_CACHE_DIR", None)
        else:
            os.environ["LLEM_CACHE_DIR"] = previous
