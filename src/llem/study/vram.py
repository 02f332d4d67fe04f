"""Dry-run memory estimate: weights + KV cache + 15% overhead, from a model config found locally."""

from __future__ import annotations

from typing import Any

from llem.config.schema import ExperimentConfig

OVERHEAD = 0.15
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def parameter_count(cfg: dict[str, Any]) -> int:
    """Decoder parameters from the config's shapes (embeddings, attention, MLP, untied head)."""
    hidden, layers, vocab = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or hidden // heads
    inter = cfg.get("intermediate_size") or 4 * hidden
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2
    mlp = 3 * hidden * inter if cfg.get("hidden_act", "silu") in ("silu", "swiglu") else 2 * hidden * inter
    head = 0 if cfg.get("tie_word_embeddings", False) else vocab * hidden
    return vocab * hidden + layers * (attention + mlp) + head


def estimate_bytes(experiment: ExperimentConfig, cfg: dict[str, Any]) -> int:
    """Bytes of GPU memory the experiment needs: (weights + KV cache) x 1.15; dtype unset = bfloat16 (GPU default)."""
    dtype = DTYPE_BYTES[experiment.dtype.value if experiment.dtype else "bfloat16"]
    weights = parameter_count(cfg) * dtype
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    tokens = (experiment.max_input_tokens or 2048) + (experiment.max_output_tokens or 2048)
    batch = (experiment.transformers.batch_size if experiment.transformers else None) or 1
    kv = 2 * cfg["num_hidden_layers"] * kv_heads * head_dim * tokens * batch * dtype
    return int((weights + kv) * (1 + OVERHEAD))


def local_gpu_bytes() -> int | None:
    """Total memory of the first visible CUDA device, or None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_properties(0).total_memory
