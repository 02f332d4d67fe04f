"""Turn the ``model`` setting into what ``from_pretrained`` loads: a local folder or a hub id."""

from __future__ import annotations

import re
from pathlib import Path

from llem.errors import ModelUnavailableError
from llem.hub import cached_snapshot, hub_reachable, offline_mode
from llem.models.registry import BUILTINS, closest_alias
from llem.models.store import prepare

# huggingface_hub's repo id rule: "name" or "org/name", word characters, dots and dashes
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


def resolve_model(name: str) -> str:
    """The folder or hub id that ``from_pretrained`` should load for the ``model`` setting ``name``.

    A built-in alias → its folder (prepared on first use); an existing folder → itself; a hub id (``org/name``
    or ``name``) → unchanged while the hub is reachable, else its cached snapshot folder. Raises
    ModelUnavailableError for the problems :func:`local_model_problem` and :func:`hub_model_problem` find.
    """
    problem = local_model_problem(name) or hub_model_problem(name)
    if problem:
        raise ModelUnavailableError(problem)
    if name in BUILTINS:
        return str(prepare(name))
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if hub_reachable():
        return name
    return str(cached_snapshot(name))  # offline: from the cache, without huggingface_hub's retries


def local_model_problem(name: str) -> str | None:
    """Why ``name`` names no model, found from the name and the file system alone; None when it may
    load: an empty name, a file, a folder without ``config.json``, a path that does not exist
    (transformers would take it for a hub id), or a bare name that misspells a built-in alias."""
    if name in BUILTINS:
        return None
    if not name.strip():
        return f"the model is empty; give a built-in alias ({', '.join(BUILTINS)}), a folder or a hub id"
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            return f"model folder '{name}' has no config.json; give the folder that holds the model's config.json"
        return None
    if path.exists():
        return f"model '{name}' is a file; give the folder that holds its config.json"
    if name.startswith((".", "/", "~")) or ".." in name or "--" in name or not _HUB_ID.fullmatch(name):
        return (
            f"model folder '{name}' does not exist; give an existing folder, a hub id (org/name) "
            f"or a built-in alias ({', '.join(BUILTINS)})"
        )
    close = None if "/" in name else closest_alias(name)
    if close:
        return f"unknown model '{name}': did you mean {close}? (llem models lists the aliases)"
    return None


def hub_model_problem(name: str) -> str | None:
    """For a hub id: why it cannot be loaded on this machine, namely that it is not in the Hugging
    Face cache and the hub cannot be reached (asked once per process, for a few seconds); None
    otherwise, and for aliases and folders."""
    if name in BUILTINS or Path(name).expanduser().exists() or local_model_problem(name):
        return None
    if cached_snapshot(name) is not None or hub_reachable():
        return None
    why = "HF_HUB_OFFLINE is set" if offline_mode() else "the Hugging Face hub cannot be reached from here"
    return (
        f"model '{name}' is not in the Hugging Face cache and {why}; download it where the hub is reachable "
        f"(hf download {name}) and copy the cache here, give a local folder, or use a built-in alias "
        f"({', '.join(BUILTINS)})"
    )
