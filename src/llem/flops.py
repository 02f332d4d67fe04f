"""Analytical FLOPs of decoder-only transformer inference, from the model's shapes and the batches run.

Counts the matrix multiplications (2 FLOPs per multiply-add), as ``torch.utils.flop_counter`` does:
every linear layer for every position processed, attention scores and weighted sums against the
whole key length (padding included, as the kernels compute it), and the output head only for the
positions whose logits generation keeps (the last one in prefill). Element-wise work (norms,
activations, softmax, rotary) is left out; it is a few percent at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llem.engines.base import BatchRecord

METHOD = "analytical: 2 x linear params x positions + 4 x layers x heads x head_dim x query x key lengths"


@dataclass(frozen=True)
class DecoderShape:
    """What the FLOPs of one forward pass depend on."""

    body_linear_params: int  # weights of every linear layer but the output head
    head_params: int  # output head (vocab x hidden), counted even when tied to the embedding
    n_layers: int
    attention_width: int  # query heads x head dim

    def prefill_flops(self, batch: int, length: int) -> int:
        """FLOPs of one prefill of ``batch`` sequences of ``length`` (padded) tokens."""
        linear = 2 * self.body_linear_params * length + 2 * self.head_params
        attention = 4 * self.n_layers * self.attention_width * length * length
        return batch * (linear + attention)

    def decode_flops(self, batch: int, key_length: int) -> int:
        """FLOPs of one decoding step (one new token per sequence) against ``key_length`` keys."""
        linear = 2 * (self.body_linear_params + self.head_params)
        attention = 4 * self.n_layers * self.attention_width * key_length
        return batch * (linear + attention)

    def batch_flops(self, batch: BatchRecord, beams: int = 1) -> int:
        """FLOPs of a whole ``generate`` call: prefill, then one step per further token."""
        rows = batch.size * beams
        total = self.prefill_flops(rows, batch.padded_input_len)
        for step in range(1, batch.forward_passes):
            total += self.decode_flops(rows, batch.padded_input_len + step)
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
    )


def estimate(shape: DecoderShape, batches: list[BatchRecord], output_tokens: int, beams: int = 1) -> dict[str, Any]:
    """The FLOPs block of a result: total, per output token, method and confidence."""
    total = sum(shape.batch_flops(b, beams) for b in batches)
    return {
        "total": total,
        "per_output_token": total / output_tokens if output_tokens else None,
        "method": METHOD,
        "confidence": "high" if beams == 1 else "medium",
        "scope": "matrix multiplications of the measured window, padding included",
    }
