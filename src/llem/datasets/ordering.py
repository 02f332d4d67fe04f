"""Prompt order, applied to the whole dataset before it is cut to ``dataset.n_prompts``."""

from __future__ import annotations

import random

from llem.config.schema import DatasetOrder
from llem.datasets.prompt import Prompt


def order_prompts(prompts: list[Prompt], order: DatasetOrder | str, random_seed: int) -> list[Prompt]:
    """``prompts`` in ``order``; a new list, the input is left as it is.

    interleaved: file order. grouped: one block per ``source`` label, blocks in the order their label
    first appears, file order within a block (unlabelled prompts form one block). shuffled: a
    ``random.Random(random_seed)`` shuffle of the whole list.
    """
    order = DatasetOrder(order)
    if order is DatasetOrder.grouped:
        groups: dict[str | None, list[Prompt]] = {}
        for prompt in prompts:
            groups.setdefault(prompt.source, []).append(prompt)
        return [prompt for group in groups.values() for prompt in group]
    ordered = list(prompts)
    if order is DatasetOrder.shuffled:
        random.Random(random_seed).shuffle(ordered)
    return ordered
