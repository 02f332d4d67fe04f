"""Analytical FLOPs of decoder-only transformer inference, from the model's shapes and the batches run.

Counts the matrix multiplications (2 FLOPs per multiply-add), as ``torch.utils.flop_counter`` does
with eager attention: every linear layer for every position a forward pass processes, attention
scores and weighted sums of those positions against every key they see (padding included, and the
whole square of the prompt in prefill, as eager attention computes it), and the output head for the
positions whose logits generation keeps. Element-wise work (norms, activations, softmax, rotary) is
left out; it is a few percent at most.

What one forward pass processes depends on the generation mode (:class:`GenerationMode`): with a
growing KV cache each step runs one new position against the keys so far; without a cache it re-runs
the whole sequence; a static cache makes every step attend to the cache's full length; prompt-lookup
decoding runs each step's proposed candidates too, and how many were proposed is not recorded, so
that count is a bounded estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llem.engines.base import BatchRecord

METHOD = (
    "analytical: 2 x linear params x positions + 2 x head params x kept logits"
    " + 4 x layers x heads x head_dim x query x key lengths"
)
CONVENTION = (
    "matrix multiplications only, as eager attention runs them: prefill attention over the full square of "
    "the padded prompt (causal kernels such as SDPA, flash attention or vLLM's skip about half of that part); "
    "norms, activations, softmax and rotary are left out"
)
# generate() arguments that change the work in ways the count does not model.
UNMODELLED_GENERATE_ARGS = {
    "prefill_chunk_size": "chunked prefill attends each chunk to the keys so far only; counted as one prefill",
    "dola_layers": "DoLa decoding: its extra heads over early layers are not counted",
}
# generate() arguments that draft tokens and verify them in one pass: the count misses a varying share.
SPECULATIVE_GENERATE_ARGS = ("assistant_model", "assistant_early_exit")


@dataclass(frozen=True)
class GenerationMode:
    """What decides the positions each forward pass of a generation processes."""

    rows_per_prompt: int = 1  # sequences run for each prompt: beams, or returned samples
    use_cache: bool = True  # False: every step re-runs the whole sequence so far
    prompt_lookup_tokens: int | None = None  # prompt-lookup decoding: most candidates proposed per step
    caveats: tuple[str, ...] = ()  # why the count is not exact for this mode (confidence medium)
    speculative: bool = False  # drafted tokens verified in batches: drafts and rejections not counted (low)

    @classmethod
    def from_generate_kwargs(cls, kwargs: dict[str, Any]) -> GenerationMode:
        """The mode of a transformers ``generate`` call with these keyword arguments."""
        caveats = tuple(why for key, why in UNMODELLED_GENERATE_ARGS.items() if kwargs.get(key) is not None)
        return cls(
            rows_per_prompt=max(int(kwargs.get("num_beams") or 1), int(kwargs.get("num_return_sequences") or 1)),
            use_cache=kwargs.get("use_cache") is not False,
            prompt_lookup_tokens=kwargs.get("prompt_lookup_num_tokens"),
            caveats=caveats,
            speculative=any(kwargs.get(key) is not None for key in SPECULATIVE_GENERATE_ARGS),
        )

    def describe(self) -> str:
        """One line naming how steps were counted."""
        if self.prompt_lookup_tokens:
            return (
                f"prompt-lookup decoding: each step runs its last token and 0-{self.prompt_lookup_tokens} proposed "
                "candidates against the KV cache, with their logits"
            )
        if self.speculative:
            return "speculative decoding counted as one position per accepted token: drafts and rejections missing"
        if not self.use_cache:
            return "no KV cache: every step re-runs the whole sequence so far"
        return "KV cache: prefill of the padded prompt, then one position per step against the keys so far"


@dataclass(frozen=True)
class DecoderShape:
    """What the FLOPs of one forward pass depend on."""

    body_linear_params: int  # weights of every linear layer but the output head
    head_params: int  # output head (vocab x hidden), counted even when tied to the embedding
    n_layers: int
    attention_width: int  # query heads x head dim
    sliding_window: int | None = None  # keys a sliding-window layer keeps (None: full attention)

    def forward_flops(self, rows: int, queries: int, keys: int, logits: int) -> int:
        """FLOPs of one forward pass: ``rows`` sequences of ``queries`` new positions, each attending to
        ``keys`` keys, with ``logits`` positions through the output head."""
        linear = 2 * self.body_linear_params * queries + 2 * self.head_params * logits
        attention = 4 * self.n_layers * self.attention_width * queries * keys
        return rows * (linear + attention)

    def batch_flops(self, batch: BatchRecord, mode: GenerationMode, candidates: str = "fewest") -> int:
        """FLOPs of a whole ``generate`` call: prefill, then each further step, as ``mode`` runs them.

        ``candidates`` (prompt lookup only): ``fewest`` assumes each step proposed only the candidates it
        accepted (a lower bound), ``most`` that it proposed the most allowed (an upper bound).
        """
        rows, prompt = batch.size * mode.rows_per_prompt, batch.padded_input_len
        if mode.prompt_lookup_tokens:
            return self._lookup_flops(batch, rows, mode.prompt_lookup_tokens, candidates == "most")
        if not mode.use_cache:
            return sum(self.forward_flops(rows, prompt + s, prompt + s, 1) for s in range(batch.forward_passes))
        if batch.cache_len is not None:  # static cache: every step attends to all of it
            steps = max(0, batch.forward_passes - 1)
            return self.forward_flops(rows, prompt, batch.cache_len, 1) + steps * self.forward_flops(
                rows, 1, batch.cache_len, 1
            )
        total = self.forward_flops(rows, prompt, prompt, 1)
        for step in range(1, batch.forward_passes):
            total += self.forward_flops(rows, 1, prompt + step, 1)
        return total

    def _lookup_flops(self, batch: BatchRecord, rows: int, most: int, upper: bool) -> int:
        """Prompt-lookup decoding: step ``i`` ran ``k`` candidates (``k`` >= accepted tokens - 1, <= ``most``)."""
        lengths = batch.step_lengths or [batch.padded_input_len + s + 1 for s in range(batch.forward_passes)]
        total, before = 0, batch.padded_input_len
        for i, after in enumerate(lengths):
            k = most if upper else max(0, after - before - 1)
            if i == 0:  # prefill: the prompt and the candidates
                total += self.forward_flops(rows, before + k, before + k, k + 1)
            else:  # the last accepted token (not yet in the cache) and the candidates
                total += self.forward_flops(rows, k + 1, before + k, k + 1)
            before = after
        return total


def decoder_shape(model: Any) -> DecoderShape:
    """The :class:`DecoderShape` of a loaded transformers causal LM."""
    import torch

    head = model.get_output_embeddings()
    head_params = head.weight.numel() if head is not None else 0
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    n_heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads
    return DecoderShape(
        body_linear_params=linear - head_params,
        head_params=head_params,
        n_layers=cfg.num_hidden_layers,
        attention_width=n_heads * head_dim,
        sliding_window=getattr(cfg, "sliding_window", None),
    )


def static_cache_len(model: Any, generate_kwargs: dict[str, Any], max_length: int) -> int | None:
    """Keys every step attended to in a ``generate`` call just made with a static cache; None otherwise.

    transformers sizes a static cache ``max_length - 1`` (prompt + new tokens - 1) and keeps the largest
    size of earlier calls on the same model, which it records on the model.
    """
    from transformers.generation.configuration_utils import ALL_STATIC_CACHE_IMPLEMENTATIONS

    if generate_kwargs.get("use_cache") is False:
        return None
    implementation = generate_kwargs.get("cache_implementation", model.generation_config.cache_implementation)
    if implementation not in ALL_STATIC_CACHE_IMPLEMENTATIONS:
        return None
    return max(max_length - 1, int(getattr(model, "_previous_max_cache_length", 0) or 0))


def estimate(
    shape: DecoderShape, batches: list[BatchRecord], output_tokens: int, mode: GenerationMode | None = None
) -> dict[str, Any]:
    """The FLOPs block of a result: total, per output token, bounds, method, confidence and why.

    ``confidence`` is ``high`` when the count is exact for the mode, ``medium`` when a caveat applies,
    ``low`` for speculative decoding (``total`` is a lower bound, ``total_upper`` null) and for
    prompt-lookup decoding, where ``total`` is the middle of ``total_lower`` and ``total_upper`` (the
    fewest and the most candidates each step could have run). ``notes`` say how and why.
    """
    mode = mode or GenerationMode()
    lower = sum(shape.batch_flops(b, mode) for b in batches)
    most = sum(shape.batch_flops(b, mode, "most") for b in batches)
    total, upper = (lower + most) // 2, None if mode.speculative else most
    caveats = list(mode.caveats)
    if shape.sliding_window:
        caveats.append(f"sliding-window layers attend to at most {shape.sliding_window} keys; counted as full")
    notes = [mode.describe(), CONVENTION]
    if cache_lens := sorted({b.cache_len for b in batches if b.cache_len is not None}):
        notes.append(f"static KV cache of {'/'.join(map(str, cache_lens))} positions: every step attends to all of it")
    confidence = "medium" if caveats else "high"
    if mode.speculative:
        confidence = "low"
        caveats.append("estimate: a lower bound (total_upper unknown); drafting and rejected drafts are not counted")
    elif mode.prompt_lookup_tokens:
        confidence = "low"
        caveats.append(
            "estimate: how many candidates each step proposed is not recorded, only how many it accepted; "
            "total is the middle of total_lower (only the accepted ones) and total_upper (the most each time)"
        )
    return {
        "total": total,
        "total_lower": lower,
        "total_upper": upper,
        "per_output_token": total / output_tokens if output_tokens else None,
        "method": f"{METHOD}; {mode.describe()}",
        "confidence": confidence,
        "notes": notes + caveats,
        "scope": "matrix multiplications of the measured window, padding included",
    }
