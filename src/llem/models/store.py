"""Built-in models in llem's cache: ``cache_dir()/models/<alias>``, prepared atomically on first use.

A folder is ready when its marker file ``llem-model.json`` names the alias and the current recipe. The marker
is written last, inside a staging folder beside the target that is then renamed into place, so a crash
mid-preparation never leaves a folder that :func:`is_ready` accepts.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llem import __version__
from llem.errors import ModelUnavailableError
from llem.models.registry import BUILTINS, Builtin, closest_alias
from llem.paths import cache_dir

MARKER = "llem-model.json"


def model_dir(alias: str) -> Path:
    """The cache folder of a built-in model (it may not exist yet)."""
    return cache_dir() / "models" / alias


def builtin(alias: str) -> Builtin:
    """The registry entry of ``alias``; ModelUnavailableError, with the closest alias, when unknown."""
    if alias in BUILTINS:
        return BUILTINS[alias]
    close = closest_alias(alias)
    hint = f"did you mean {close}? " if close else ""
    raise ModelUnavailableError(f"unknown built-in model '{alias}'; {hint}the built-in models: {', '.join(BUILTINS)}")


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The marker of a prepared folder, or None when it is missing or unreadable."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def _marker_ok(alias: str, folder: Path) -> bool:
    marker = read_marker(folder)
    return marker is not None and marker.get("alias") == alias and marker.get("recipe") == builtin(alias).recipe


def is_ready(alias: str) -> bool:
    """Whether the built-in model ``alias`` is prepared (complete, by the current recipe)."""
    return _marker_ok(alias, model_dir(alias))


def prepare(alias: str, force: bool = False) -> Path:
    """Prepare the built-in model ``alias`` unless it is ready (or ``force``); return its folder.

    Prints one line to stderr when it prepares. Raises ModelUnavailableError when the model cannot be built here.
    """
    spec = builtin(alias)
    target = model_dir(alias)
    if not force and is_ready(alias):
        return target
    print(f"llem: preparing built-in model {alias} in {target}", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(target, "partial")
    try:
        start = time.perf_counter()
        with _quiet_transformers():
            info = importlib.import_module(f"llem.models.{spec.builder}").build(staging)
        marker = {
            "alias": alias,
            "recipe": spec.recipe,
            **info,
            "llem_version": __version__,
            "transformers_version": _transformers_version(),
            "prepare_time_s": round(time.perf_counter() - start, 2),
        }
        (staging / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _install(alias, staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def prepare_if_needed(name: str) -> float | None:
    """Prepare the built-in model ``name`` if it is one and not ready: the seconds it took, else None.

    Measurements call this before the timed model load, so that ``load_time_s`` never includes the
    one-time preparation (converting or building the model into the cache).
    """
    if name not in BUILTINS or is_ready(name):
        return None
    start = time.perf_counter()
    prepare(name)
    return time.perf_counter() - start


def _install(alias: str, staging: Path, target: Path) -> None:
    """Rename the finished ``staging`` folder to ``target``, moving any previous folder aside first."""
    trash = _sibling(target, "old")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.replace(target, trash / alias)
        try:
            os.rename(staging, target)
        except OSError:
            if not _marker_ok(alias, target):  # else another process installed a ready copy meanwhile
                raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def _sibling(target: Path, kind: str) -> Path:
    """A new, hidden, uniquely named folder beside ``target`` (same file system, so renames are atomic)."""
    folder = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{kind}")
    folder.mkdir()
    return folder


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' progress bars and warnings while a model is built (llem prints its own line)."""
    from transformers.utils import logging

    bars, verbosity = logging.is_progress_bar_enabled(), logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()
