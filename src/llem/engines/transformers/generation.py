"""Generation for the Transformers engine: generate kwargs, per-step timestamps, exact token counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from llem.config.schema import ExperimentConfig, TransformersConfig
from llem.engines.base import RequestRecord
from llem.engines.common import count_generated


def generation_kwargs(cfg: ExperimentConfig, gen_passthrough: dict[str, Any]) -> dict[str, Any]:
    """``generate`` keyword arguments from the decoder and engine sections (max_new_tokens aside)."""
    d = cfg.decoder
    t = cfg.transformers or TransformersConfig()
    sample = d.do_sample and d.temperature > 0
    kwargs: dict[str, Any] = {
        "do_sample": sample,
        "repetition_penalty": d.repetition_penalty,
        "num_beams": t.num_beams or 1,
        "use_cache": True if t.use_cache is None else t.use_cache,
    }
    if sample:
        kwargs.update(temperature=d.temperature, top_k=d.top_k, top_p=d.top_p)
        if d.min_p is not None:
            kwargs["min_p"] = d.min_p
    else:  # greedy or beam: neutral sampling fields, so transformers does not warn about them
        kwargs.update(temperature=None, top_k=None, top_p=None)
    if d.min_new_tokens is not None:
        kwargs["min_new_tokens"] = d.min_new_tokens
    if (t.num_beams or 1) > 1:
        kwargs["early_stopping"] = bool(t.early_stopping)
        kwargs["length_penalty"] = 1.0 if t.length_penalty is None else t.length_penalty
    optional = {
        "no_repeat_ngram_size": t.no_repeat_ngram_size,
        "prompt_lookup_num_tokens": t.prompt_lookup_num_tokens,
        "cache_implementation": t.cache_implementation.value if t.cache_implementation else None,
    }
    kwargs.update({k: v for k, v in optional.items() if v is not None})
    kwargs.update(gen_passthrough)
    return kwargs


class StepTimer:
    """A stopping criterion that never stops: it timestamps every decoding step.

    ``generate`` calls it once per step after the new tokens are appended, so ``marks`` holds
    ``(seconds since start, sequence length)`` pairs; the first mark is the first token. After each
    mark, ``on_step`` (set by :meth:`reset`) gets the sequence length: progress, told at a point that
    is already synchronised and timed.
    """

    def __init__(self, synchronize: Any) -> None:
        self._sync = synchronize
        self.start = 0.0
        self.marks: list[tuple[float, int]] = []
        self._on_step: Callable[[int], None] | None = None

    def reset(self, on_step: Callable[[int], None] | None = None) -> None:
        self.marks.clear()
        self._on_step = on_step
        self.start = time.perf_counter()

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        self._sync()
        length = int(input_ids.shape[-1])
        self.marks.append((time.perf_counter() - self.start, length))
        if self._on_step is not None:
            self._on_step(length)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def token_times(marks: list[tuple[float, int]], prompt_len: int) -> list[float]:
    """Arrival time of each generated token (seconds from batch start), one entry per token.

    A step that appended several tokens (prompt-lookup decoding) spreads them evenly over it.
    """
    times: list[float] = []
    prev_t, prev_len = 0.0, prompt_len
    for t, length in marks:
        new = length - prev_len
        times += [prev_t + (t - prev_t) * (i + 1) / new for i in range(new)]
        prev_t, prev_len = t, length
    return times


def request_records(
    generated: Any,
    input_lens: list[int],
    padded_len: int,
    marks: list[tuple[float, int]],
    eos_ids: set[int],
    queued_s: float = 0.0,
) -> list[RequestRecord]:
    """One :class:`RequestRecord` per row of ``generated`` (the new tokens only).

    ``marks`` are seconds from the batch's start; ``queued_s`` is how long the batch's requests
    waited from their arrival until it started, so TTFT counts from arrival.
    """
    arrivals = [queued_s + t for t in token_times(marks, padded_len)]
    records = []
    for row, n_in in zip(generated.tolist(), input_lens):
        n_out, by_eos = count_generated(row, eos_ids)
        mine = arrivals[:n_out]
        records.append(
            RequestRecord(
                input_tokens=n_in,
                output_tokens=n_out,
                ttft_s=mine[0] if mine else None,
                itl_s=[b - a for a, b in zip(mine, mine[1:])],
                finished_by_eos=by_eos,
                queue_s=queued_s,
            )
        )
    return records


def eos_token_ids(generation_config: Any, tokenizer: Any, gen_passthrough: dict[str, Any] | None = None) -> set[int]:
    """Every token id that ends a sequence: a passthrough ``eos_token_id`` wins over the model's."""
    eos = (gen_passthrough or {}).get("eos_token_id", generation_config.eos_token_id)
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return set(eos) if isinstance(eos, (list, tuple)) else {int(eos)}
