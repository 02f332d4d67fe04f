"""Turn the ``model`` setting into what ``from_pretrained`` loads: a local folder or a hub id."""

from __future__ import annotations

import re
from pathlib import Path

from llem.errors import ModelUnavailableError
from llem.models.registry import BUILTINS, closest_alias
from llem.models.store import prepare

# huggingface_hub's repo id rule: "name" or "org/name", word characters, dots and dashes
_HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


def resolve_model(name: str) -> str:
    """The folder or hub id that ``from_pretrained`` should load for the ``model`` setting ``name``.

    A built-in alias → its folder (prepared on first use); an existing folder → itself; a hub id (``org/name``
    or ``name``) → unchanged. Raises ModelUnavailableError for a path that does not exist (transformers would
    take it for a hub id), a file, or a bare name that misspells a built-in alias.
    """
    if not name.strip():
        raise ModelUnavailableError(
            f"the model is empty; give a built-in alias ({', '.join(BUILTINS)}), a folder or a hub id"
        )
    if name in BUILTINS:
        return str(prepare(name))
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ModelUnavailableError(f"model '{name}' is a file; give the folder that holds its config.json")
    if name.startswith((".", "/", "~")) or ".." in name or "--" in name or not _HUB_ID.fullmatch(name):
        raise ModelUnavailableError(
            f"model folder '{name}' does not exist; give an existing folder, a hub id (org/name) "
            f"or a built-in alias ({', '.join(BUILTINS)})"
        )
    close = None if "/" in name else closest_alias(name)
    if close:
        raise ModelUnavailableError(f"unknown model '{name}': did you mean {close}? (llem models lists the aliases)")
    return name
