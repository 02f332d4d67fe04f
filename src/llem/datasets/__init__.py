"""The prompts an experiment measures: ``load_prompts(cfg.dataset, random_seed=..., tokenizer=...)``.

Sources (``dataset.source``): ``builtin`` (llem's own prompt set, offline), a path to a JSON-lines
file, ``synthetic`` (random prompts of an exact token length) and ``aienergyscore`` (the AI Energy
Score prompts from the Hugging Face hub). Heavy libraries (``datasets``, ``transformers``) are
imported only when a source needs them.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Any

from llem.config.schema import DatasetConfig
from llem.datasets import aienergyscore, builtin, jsonl, synthetic
from llem.datasets.ordering import order_prompts
from llem.datasets.prompt import Prompt
from llem.errors import DatasetError

__all__ = ["ALIASES", "Prompt", "check_source", "load_prompts"]

ALIASES = ("builtin", "synthetic", "aienergyscore")


def load_prompts(dataset: DatasetConfig, *, random_seed: int, tokenizer: Any = None) -> list[Prompt]:
    """The first ``dataset.n_prompts`` prompts of ``dataset.source`` after ``dataset.order`` is applied.

    ``random_seed`` seeds the ``shuffled`` order (and the synthetic draw when ``dataset.seed`` is None);
    ``tokenizer`` (a transformers tokenizer) is needed by ``synthetic`` only. Raises ``DatasetError``
    for a source that cannot be read or holds fewer than ``n_prompts`` prompts.
    """
    source = dataset.source
    if source == "synthetic":
        prompts = synthetic.generate(dataset, random_seed, tokenizer)
    elif source == "builtin":
        prompts = builtin.load()
    elif source == "aienergyscore":
        prompts = aienergyscore.load(dataset.prompt_field)
    else:
        prompts = jsonl.load(_jsonl_path(source), dataset.prompt_field)
    _check_size(dataset, len(prompts))
    return order_prompts(prompts, dataset.order, random_seed)[: dataset.n_prompts]


def check_source(dataset: DatasetConfig) -> None:
    """Raise the DatasetError :func:`load_prompts` would, where it can be known without a model or
    the hub: a built-in or JSON-lines source that is missing, unreadable or holds fewer than
    ``dataset.n_prompts`` prompts. ``synthetic`` and ``aienergyscore`` are not checked here."""
    source = dataset.source
    if source in ("synthetic", "aienergyscore"):
        return
    if source == "builtin":
        _check_size(dataset, _count_builtin())
        return
    path = _jsonl_path(source)
    jsonl.check_file(path)
    stat = path.stat()
    _check_size(dataset, _count_jsonl(str(path.resolve()), stat.st_mtime_ns, stat.st_size, dataset.prompt_field))


def _check_size(dataset: DatasetConfig, available: int) -> None:
    if available < dataset.n_prompts:
        raise DatasetError(
            f"dataset.n_prompts={dataset.n_prompts} but dataset.source={dataset.source} has only {available} "
            f"prompts; set dataset.n_prompts to at most {available} or use a larger dataset"
        )


@functools.cache
def _count_builtin() -> int:
    return len(builtin.load())


@functools.lru_cache(maxsize=64)
def _count_jsonl(path: str, mtime_ns: int, size: int, prompt_field: str | None) -> int:
    """Prompts in a JSON-lines file, read once per version of the file (``mtime_ns``, ``size``)."""
    return len(jsonl.load(Path(path), prompt_field))


def _jsonl_path(source: str) -> Path:
    """``source`` as a path when it names an existing file or ends in ``.jsonl``; else a DatasetError."""
    path = Path(source).expanduser()
    if path.is_file() or path.suffix == ".jsonl":
        return path
    close = difflib.get_close_matches(source, ALIASES, n=1)
    hint = f"did you mean dataset.source={close[0]}? " if close else ""
    raise DatasetError(
        f"dataset.source={source!r} is neither a built-in dataset ({', '.join(ALIASES)}) nor an existing file; "
        f"{hint}For your own prompts give the path of a .jsonl file."
    )
