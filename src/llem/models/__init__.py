"""Models: built-in aliases prepared into llem's cache, and resolution of the ``model`` setting.

Importing this package does not import torch or transformers (the study planner imports it).
"""

from __future__ import annotations

from pathlib import Path

from llem.models.registry import BUILTIN_MODELS
from llem.models.resolve import resolve_model
from llem.models.store import is_ready, model_dir, prepare, prepare_if_needed

__all__ = [
    "BUILTIN_MODELS",
    "is_ready",
    "model_dir",
    "model_status",
    "prepare",
    "prepare_if_needed",
    "resolve_model",
]


def model_status() -> list[tuple[str, str, bool, Path]]:
    """``(alias, description, ready, folder)`` for each built-in model, for ``llem models``."""
    return [(alias, description, is_ready(alias), model_dir(alias)) for alias, description in BUILTIN_MODELS.items()]
