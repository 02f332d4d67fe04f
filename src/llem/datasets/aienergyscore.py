"""The AI Energy Score text-generation prompts, loaded from the Hugging Face hub with ``datasets``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llem.datasets import jsonl
from llem.datasets.prompt import Prompt
from llem.errors import DatasetError

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
    if load_dataset is None:
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
        raise DatasetError(
            f"cannot load the AI Energy Score prompts ({hub_id}): {type(err).__name__}: {err}. "
            f"Check the network and the Hugging Face hub, or use {OFFLINE}"
        ) from err
    where = f"{hub_id} (split {SPLIT})"
    field = jsonl.detect_field([dict.fromkeys(table.column_names)], where, prompt_field)
    prompts = [jsonl.record_prompt(record, field, f"{where} row {row}") for row, record in enumerate(table)]
    prompts = [prompt for prompt in prompts if prompt is not None]
    if not prompts:
        raise DatasetError(f"dataset {where} holds no prompts; use {OFFLINE}")
    return prompts
