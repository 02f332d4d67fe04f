"""The AI Energy Score text-generation prompts, loaded from the Hugging Face hub with ``datasets``."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from llem.datasets import jsonl
from llem.datasets.prompt import Prompt
from llem.errors import DatasetError
from llem.hub import hub_reachable

HUB_ID = "AIEnergyScore/text_generation"
SPLIT = "train"
OFFLINE = "dataset.source=builtin (llem's own prompts), a .jsonl path, or dataset.source=synthetic"


def load(
    prompt_field: str | None = None,
    *,
    hub_id: str | None = None,
    load_dataset: Callable[..., Any] | None = None,
) -> list[Prompt]:
    """The prompts of ``hub_id`` (default ``HUB_ID``), split ``train``, in dataset order.

    ``load_dataset`` (default ``datasets.load_dataset``) is called as ``load_dataset(hub_id, split="train")``;
    pass another callable, or a local folder as ``hub_id``, to load without the hub. The prompt
    column is ``prompt_field`` or detected like a JSON-lines field; a ``source`` column labels groups.
    """
    hub_id = hub_id or HUB_ID
    unreachable = False
    if load_dataset is None:
        unreachable = go_offline_unless_hub_reachable()
        try:
            from datasets import load_dataset
        except ImportError as err:
            raise DatasetError(
                f"dataset.source=aienergyscore needs the 'datasets' package: pip install 'llem[aienergyscore]'; "
                f"or measure offline with {OFFLINE}"
            ) from err
    try:
        table = load_dataset(hub_id, split=SPLIT)
    except Exception as err:  # offline mode, no network, hub errors: all leave the user the same choices
        why = (
            "the Hugging Face hub is unreachable from here and the dataset is not in the local cache"
            if unreachable
            else f"{type(err).__name__}: {err}"
        )
        raise DatasetError(
            f"cannot load the AI Energy Score prompts ({hub_id}): {why}. "
            f"Check the network and the Hugging Face hub, or use {OFFLINE}"
        ) from err
    where = f"{hub_id} (split {SPLIT})"
    field = jsonl.detect_field([dict.fromkeys(table.column_names)], where, prompt_field)
    prompts = [jsonl.record_prompt(record, field, f"{where} row {row}") for row, record in enumerate(table)]
    prompts = [prompt for prompt in prompts if prompt is not None]
    if not prompts:
        raise DatasetError(f"dataset {where} holds no prompts; use {OFFLINE}")
    return prompts


def go_offline_unless_hub_reachable() -> bool:
    """Use only the local cache when the hub cannot be reached, instead of retrying for half a minute;
    True when it switched to offline mode.

    Takes effect when ``datasets`` is not imported yet (it reads ``HF_HUB_OFFLINE`` on import).
    """
    if os.environ.get("HF_HUB_OFFLINE") or "datasets" in sys.modules or hub_reachable():
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    return True
