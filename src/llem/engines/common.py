"""Helpers the engines share: the model's shape and parameter count from its folder, the token ids that
end a sequence, exact generated-token counts, progress over a token budget, and the split of
``passthrough_kwargs`` between an engine's constructor and its sampling parameters."""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any

from llem import flops
from llem.errors import ConfigError
from llem.progress import Progress


def count_generated(row: Iterable[int], eos_ids: set[int]) -> tuple[int, bool]:
    """Generated tokens of one sequence: up to and including its first EOS, no padding after it.

    Returns ``(count, stopped_at_eos)``.
    """
    count = 0
    for token in row:
        count += 1
        if token in eos_ids:
            return count, True
    return count, False


def fold_streamed(completions: Iterable[Any], eos_ids: set[int]) -> tuple[int, list[bool], list[float], float | None]:
    """One request's streamed completions (each with ``tokens`` and their arrival ``times``, seconds):
    output tokens up to each first EOS, summed; whether each ended on EOS; every gap between consecutive
    tokens of a completion (s); the earliest first-token time (None without tokens)."""
    total, ended_on_eos, gaps, firsts = 0, [], [], []
    for completion in completions:
        count, eos = count_generated(completion.tokens, eos_ids)
        stamps = completion.times[:count]
        total += count
        ended_on_eos.append(eos)
        gaps += [b - a for a, b in zip(stamps, stamps[1:])]
        firsts += stamps[:1]
    return total, ended_on_eos, gaps, min(firsts) if firsts else None


def token_budget(params: Any) -> int | None:
    """A request's most output tokens from its sampling parameters (``max_tokens`` x ``n`` sequences);
    None when ``max_tokens`` is unset (up to the context length)."""
    return None if params.max_tokens is None else params.max_tokens * (params.n or 1)


class BudgetTracker:
    """Progress of one ``generate`` that delivers tokens step by step: requests finished and tokens
    delivered. With every request's budget known (its most tokens: ``max_tokens`` x sequences), the
    fraction done counts a finished request as its whole budget and an unfinished one by its tokens so
    far; with any budget unknown, the fraction is the requests finished."""

    def __init__(self, progress: Progress, budgets: dict[Hashable, int | None]) -> None:
        self.progress = progress
        known = {request: b for request, b in budgets.items() if b is not None}
        self.budget = known if len(known) == len(budgets) else None
        self.total_budget = sum(known.values()) if self.budget else 0
        self.delivered: dict[Hashable, int] = {}
        self.finished = self.tokens = self.credited = 0

    def add(self, request: Hashable, new_tokens: int, finished: bool = False) -> None:
        """``new_tokens`` of ``request`` (tokens), delivered by one step; ``finished``: its last step."""
        self.tokens += new_tokens
        self.credited += new_tokens
        if self.budget is not None:
            self.delivered[request] = self.delivered.get(request, 0) + new_tokens
        if finished:
            self.finished += 1
            if self.budget is not None:
                self.credited += max(0, self.budget[request] - self.delivered[request])

    def report(self) -> None:
        """Hand the counts to the progress (call once per step, after its :meth:`add` calls)."""
        fraction = min(1.0, self.credited / self.total_budget) if self.total_budget else None
        self.progress.update(self.finished, self.tokens, fraction=fraction)


def eos_ids(path: str, tokenizer: Any) -> set[int]:
    """Token ids that end a sequence, as vLLM and TensorRT-LLM stop on them: the model's generation-config
    EOS ids and the tokenizer's EOS."""
    from transformers import GenerationConfig

    from llem.engines.transformers.generation import eos_token_ids

    try:
        generation_config = GenerationConfig.from_pretrained(path)
    except OSError:
        generation_config = GenerationConfig()
    ids = eos_token_ids(generation_config, tokenizer)
    return ids | ({int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set())


def parameter_count(path: str) -> int | None:
    """Parameters stored in the model folder's safetensors files; None when there are none here."""
    from safetensors import safe_open

    files = sorted(Path(path).glob("*.safetensors")) if Path(path).is_dir() else []
    if not files:
        return None
    total = 0
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                total += math.prod(handle.get_slice(name).get_shape())
    return total


@functools.cache
def decoder_shape(path: str) -> flops.DecoderShape:
    """The model's :class:`~llem.flops.DecoderShape`, from its config on the meta device (no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return flops.decoder_shape(model)


def split_passthrough(
    given: dict[str, Any],
    engine_fields: frozenset[str],
    sampling_fields: frozenset[str],
    llem_set: frozenset[str],
    unknown_hint: str,
    llem_set_hint: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``passthrough_kwargs`` as ``(engine kwargs, sampling kwargs)``: a key that is a field of both goes to
    the engine only. A key in neither set is a ConfigError ending in ``unknown_hint``; one llem sets itself
    (``llem_set``) a ConfigError ending in ``llem_set_hint``."""
    for key in sorted(given):
        if key not in engine_fields and key not in sampling_fields:
            raise ConfigError(f"passthrough_kwargs.{key}: {unknown_hint}; fix the name or remove it")
        if key in llem_set:
            raise ConfigError(
                f"passthrough_kwargs.{key}: llem sets it from its own fields ({llem_set_hint}); set the field instead"
            )
    engine = {k: v for k, v in given.items() if k in engine_fields}
    sampling = {k: v for k, v in given.items() if k in sampling_fields and k not in engine_fields}
    return engine, sampling
