"""Synthetic prompts: random token sequences of an exact length for the model's tokenizer.

The length counts every token the engine is given: the prompt's own tokens and the special tokens
(BOS) the tokenizer adds when the engine encodes it.
"""

from __future__ import annotations

import random
from typing import Any

from llem.config.schema import DatasetConfig
from llem.datasets.prompt import Prompt
from llem.errors import DatasetError

# fix-up rounds (re-encode, then trim or extend) before a sequence is redrawn from scratch
MAX_ROUNDS = 20
# fresh draws per prompt before giving up on the tokenizer
MAX_DRAWS = 50


def generate(dataset: DatasetConfig, random_seed: int, tokenizer: Any) -> list[Prompt]:
    """``dataset.n_prompts`` prompts of exactly ``dataset.input_len`` tokens, each asking for ``output_len`` tokens.

    A prompt's length counts the tokens of ``tokenizer(text)``, as the engines encode it: its special
    tokens (BOS) included. Token ids are drawn by
    ``random.Random(dataset.seed)`` (``random_seed`` when ``dataset.seed`` is None), so a seed and a
    tokenizer always give the same prompts.
    """
    for name in ("input_len", "output_len"):
        if getattr(dataset, name) is None:
            raise DatasetError(f"dataset.source=synthetic needs dataset.{name} (tokens), e.g. dataset.{name}=128")
    if tokenizer is None:
        raise DatasetError(
            "dataset.source=synthetic needs the model's tokenizer and this engine provides none; "
            "use dataset.source=builtin or a .jsonl path"
        )
    specials = special_token_count(tokenizer)
    if dataset.input_len <= specials:
        raise DatasetError(
            f"dataset.input_len={dataset.input_len} leaves no prompt tokens: this tokenizer adds {specials} special "
            f"token(s) to every prompt; set dataset.input_len={specials + 1} or more"
        )
    rng = random.Random(dataset.seed if dataset.seed is not None else random_seed)
    pool = token_pool(tokenizer)
    return [
        Prompt(text=exact_length_text(tokenizer, pool, dataset.input_len, rng), max_new_tokens=dataset.output_len)
        for _ in range(dataset.n_prompts)
    ]


def special_token_count(tokenizer: Any) -> int:
    """Tokens the tokenizer adds to every single text it encodes (BOS, EOS or both)."""
    return len(tokenizer("")["input_ids"])


def token_pool(tokenizer: Any) -> list[int]:
    """The ids a draw may use: the whole vocabulary less special and added tokens, ascending."""
    excluded = set(tokenizer.all_special_ids) | set(tokenizer.get_added_vocab().values())
    return [token_id for token_id in range(len(tokenizer)) if token_id not in excluded]


def exact_length_text(tokenizer: Any, pool: list[int], length: int, rng: random.Random) -> str:
    """A text that the engines encode to exactly ``length`` tokens, the tokenizer's special tokens included.

    Decoding random ids and encoding the text again rarely gives the same ids (merges across token
    boundaries, partial UTF-8 bytes), so the re-encoded ids are trimmed or extended with fresh draws
    until the length holds.
    """
    content = length - special_token_count(tokenizer)
    for _ in range(MAX_DRAWS):
        ids = rng.choices(pool, k=content)
        for _ in range(MAX_ROUNDS):
            text = tokenizer.decode(ids)
            ids = tokenizer.encode(text, add_special_tokens=False)
            if len(ids) == content and len(tokenizer(text)["input_ids"]) == length:
                return text
            ids = ids[:content] if len(ids) > content else ids + rng.choices(pool, k=content - len(ids))
    raise DatasetError(
        f"could not build a prompt of exactly dataset.input_len={length} tokens with this tokenizer; "
        "try another dataset.input_len or use dataset.source=builtin"
    )
