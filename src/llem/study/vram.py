"""Dry-run memory estimate: weights + KV cache + 15% overhead, from a model config found locally."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llem.config.schema import ExperimentConfig

OVERHEAD = 0.15
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def local_model_config(model: str) -> dict[str, Any] | None:
    """The model's config.json from a local folder, a prepared built-in, or the hub cache; else None."""
    from llem.models import BUILTIN_MODELS, is_ready, model_dir

    if model in BUILTIN_MODELS:
        folder = model_dir(model) if is_ready(model) else None
    elif Path(model).expanduser().is_dir():
        folder = Path(model).expanduser()
    else:
        folder = _hub_cache_folder(model)
    if folder is None or not (folder / "config.json").is_file():
        return None
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def _hub_cache_folder(model: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(model, "config.json")
    return Path(found).parent if isinstance(found, str) else None


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
