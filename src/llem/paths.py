"""Where llem keeps its caches and default outputs."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """llem's cache folder: ``$LLEM_CACHE_DIR``, else the platform's user cache dir for llem."""
    override = os.environ.get("LLEM_CACHE_DIR")
    return Path(override).expanduser() if override else Path(platformdirs.user_cache_dir("llem"))
