"""llem's ``vllm`` section -> the keyword arguments of vLLM 0.32's ``LLM``/``EngineArgs``,
``SamplingParams`` and ``BeamSearchParams``.

Pure functions of the config: nothing here imports vLLM, so the mapping is tested without it and
the contract test checks every name produced here against the installed vLLM.
"""

from __future__ import annotations

import os
from typing import Any

from llem.config.schema import (
    DType,
    ExperimentConfig,
    VllmBeamSearchConfig,
    VllmConfig,
    VllmEngineConfig,
    VllmSamplingConfig,
)
from llem.engines.vllm.capabilities import CPU_KV_CACHE_BYTES

# llem fields passed to EngineArgs under the same name, unchanged when set.
PLAIN_ENGINE_FIELDS = (
    "gpu_memory_utilization",
    "cpu_offload_gb",
    "block_size",
    "enable_chunked_prefill",
    "max_num_seqs",
    "max_num_batched_tokens",
    "max_model_len",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "disable_custom_all_reduce",
    "kv_cache_memory_bytes",
    "offload_group_size",
    "offload_num_in_group",
    "offload_prefetch_step",
)
ENUM_ENGINE_FIELDS = ("kv_cache_dtype", "quantization", "distributed_executor_backend")
# Every argument llem itself derives from its fields: passthrough_kwargs may not set them again.
LLEM_SET_KEYS = frozenset(
    {"model", "dtype", "seed", "disable_log_stats", "enable_prefix_caching", "enforce_eager", "enable_lora"}
    | set(PLAIN_ENGINE_FIELDS + ENUM_ENGINE_FIELDS)
    | {"offload_params", "speculative_config", "compilation_config", "attention_config"}
    | {"temperature", "repetition_penalty", "top_p", "top_k", "min_p", "max_tokens", "min_tokens"}
    | {"presence_penalty", "frequency_penalty", "ignore_eos", "n", "output_kind"}
)


def _set(section: Any) -> dict[str, Any]:
    """The fields of a dataclass section that are not None (enums as their values)."""
    if section is None:
        return {}
    out = {}
    for name, value in vars(section).items():
        if value is not None:
            out[name] = value.value if hasattr(value, "value") else value
    return out


def sections(cfg: ExperimentConfig) -> tuple[VllmEngineConfig, VllmSamplingConfig, VllmBeamSearchConfig | None]:
    """The engine and sampling sections (defaults where unset) and the beam-search section (None: no beam)."""
    v = cfg.vllm or VllmConfig(engine=None, sampling=None, beam_search=None)
    return v.engine or VllmEngineConfig(), v.sampling or VllmSamplingConfig(), v.beam_search


def engine_kwargs(cfg: ExperimentConfig, model_path: str, dtype: DType, device: str) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM(...)`` for ``cfg`` on ``device`` (``cpu`` or ``cuda``).

    llem's measurement defaults: prefix caching off unless set (a repeated prompt would be served
    from the cache); per-request statistics on; on a CPU, eager mode (the compiled start takes
    minutes there) and a 1 GiB KV cache unless ``kv_cache_memory_bytes``,
    ``gpu_memory_utilization`` or ``$VLLM_CPU_KVCACHE_SPACE`` sizes it.
    """
    engine, _, _ = sections(cfg)
    kwargs: dict[str, Any] = {
        "model": model_path,
        "dtype": dtype.value,
        "seed": cfg.random_seed,
        "disable_log_stats": False,
        "enable_prefix_caching": bool(engine.enable_prefix_caching),
        "enforce_eager": engine.enforce_eager if engine.enforce_eager is not None else device == "cpu",
    }
    for name in PLAIN_ENGINE_FIELDS + ENUM_ENGINE_FIELDS:
        value = getattr(engine, name)
        if value is not None:
            kwargs[name] = value.value if hasattr(value, "value") else value
    if engine.offload_params is not None:
        kwargs["offload_params"] = set(engine.offload_params)
    if speculative := _set(engine.speculative_config):
        kwargs["speculative_config"] = speculative
    if engine.compilation_config:
        kwargs["compilation_config"] = dict(engine.compilation_config)
    if attention := _set(engine.attention_config):
        kwargs["attention_config"] = attention
    cpu_cache_set = bool(os.environ.get("VLLM_CPU_KVCACHE_SPACE")) or any(
        value is not None for value in (engine.kv_cache_memory_bytes, engine.gpu_memory_utilization)
    )
    if device == "cpu" and not cpu_cache_set:
        kwargs["kv_cache_memory_bytes"] = CPU_KV_CACHE_BYTES
    if cfg.lora is not None:
        kwargs["enable_lora"] = True
    return kwargs


def sampling_kwargs(cfg: ExperimentConfig, forced_tokens: int | None) -> dict[str, Any]:
    """Keyword arguments of ``SamplingParams`` (``output_kind`` aside) for one prompt.

    ``forced_tokens`` (synthetic prompts, warm-up) sets ``min_tokens = max_tokens``: exactly that
    many tokens, EOS or not.
    """
    d = cfg.decoder
    _, s, _ = sections(cfg)
    greedy = not (d.do_sample and d.temperature > 0)
    kwargs: dict[str, Any] = {
        "temperature": 0.0 if greedy else d.temperature,
        "repetition_penalty": d.repetition_penalty,
    }
    if not greedy:
        kwargs.update(top_p=d.top_p, top_k=d.top_k)
        if d.min_p is not None:
            kwargs["min_p"] = d.min_p
    max_tokens = s.max_tokens if s.max_tokens is not None else cfg.max_output_tokens
    min_tokens = s.min_tokens if s.min_tokens is not None else d.min_new_tokens
    if forced_tokens is not None:
        max_tokens = min_tokens = forced_tokens
    kwargs["max_tokens"] = max_tokens  # None: up to the context length (vLLM's own default would be 16)
    if min_tokens is not None:
        kwargs["min_tokens"] = min_tokens
    for name in ("presence_penalty", "frequency_penalty", "ignore_eos", "n"):
        value = getattr(s, name)
        if value is not None:
            kwargs[name] = value
    return kwargs


def beam_search_kwargs(cfg: ExperimentConfig, forced_tokens: int | None, room: int) -> dict[str, Any]:
    """Keyword arguments of ``BeamSearchParams``; ``forced_tokens`` ignores EOS up to that length.

    ``room`` is the cap when no maximum is set: the context length less the longest prompt, tokens.
    """
    _, _, beam = sections(cfg)
    assert beam is not None
    kwargs: dict[str, Any] = {
        "beam_width": beam.beam_width or 1,
        "max_tokens": beam.max_tokens or cfg.max_output_tokens or room,
    }
    if beam.length_penalty is not None:
        kwargs["length_penalty"] = beam.length_penalty
    if beam.ignore_eos is not None:
        kwargs["ignore_eos"] = beam.ignore_eos
    if forced_tokens is not None:
        kwargs.update(max_tokens=forced_tokens, ignore_eos=True)
    return kwargs
