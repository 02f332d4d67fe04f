"""Prompt texts -> token ids, the same way for every engine (chat template, truncation).

Every engine measures the token ids made here, so two engines given one dataset and one model see
exactly the same input tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llem.config.schema import DatasetConfig
from llem.datasets import Prompt
from llem.errors import DatasetError


def applies_chat_template(dataset: DatasetConfig, tokenizer: Any) -> bool:
    """Whether prompts are wrapped in the tokenizer's chat template (``dataset.chat_template``).

    None (the default) means: when the tokenizer has a template and the prompts are texts, not
    synthetic token sequences. ``true`` for a tokenizer without one is a :class:`DatasetError`.
    """
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if dataset.chat_template is None:
        return has_template and dataset.source != "synthetic"
    if dataset.chat_template and not has_template:
        raise DatasetError(
            "dataset.chat_template=true, but this model's tokenizer has no chat template; "
            "set dataset.chat_template=false (or leave it unset)"
        )
    return dataset.chat_template


def encode_prompts(
    tokenizer: Any, prompts: Sequence[Prompt], max_input_tokens: int | None, chat_template: bool
) -> list[list[int]]:
    """Token ids of each prompt, cut to ``max_input_tokens`` (the end is dropped).

    With ``chat_template`` each prompt is one user turn followed by the assistant's generation
    prompt: the prompt text is cut to ``max_input_tokens`` first, so the template (and its
    generation prompt) stays whole and adds its own tokens on top; the template writes its own
    special tokens, so the tokenizer adds none.
    """
    cut = {"truncation": max_input_tokens is not None, "max_length": max_input_tokens}
    if not chat_template:
        return [list(ids) for ids in tokenizer([p.text for p in prompts], **cut)["input_ids"]]
    contents = tokenizer([p.text for p in prompts], add_special_tokens=False, **cut)["input_ids"]
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": tokenizer.decode(ids)}], tokenize=False, add_generation_prompt=True
        )
        for ids in contents
    ]
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
