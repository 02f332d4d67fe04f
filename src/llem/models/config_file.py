"""A model's ``config.json`` read without loading the model (memory estimates, vLLM's head size)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llem.models.registry import BUILTIN_MODELS
from llem.models.store import is_ready, model_dir


def local_model_config(model: str) -> dict[str, Any] | None:
    """The model's config.json from a local folder, a prepared built-in, or the hub cache; else None."""
    if model in BUILTIN_MODELS:
        folder = model_dir(model) if is_ready(model) else None
    elif Path(model).expanduser().is_dir():
        folder = Path(model).expanduser()
    else:
        folder = _hub_cache_folder(model)
    if folder is None or not (folder / "config.json").is_file():
        return None
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def _hub_cache_folder(model: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(model, "config.json")
    return Path(found).parent if isinstance(found, str) else None
