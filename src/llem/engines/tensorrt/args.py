"""llem's ``tensorrt`` section -> the keyword arguments of TensorRT-LLM 1.2's ``LLM`` (``TorchLlmArgs`` or
``TrtLlmArgs``), its ``KvCacheConfig``, ``SchedulerConfig`` and ``QuantConfig``, and ``SamplingParams``.

Pure functions of the config: nothing here imports TensorRT-LLM. Nested configs are plain dicts the
engine turns into TensorRT-LLM's classes; ``tests/test_tensorrt_contract.py`` checks every name
produced here against the recorded 1.2.1 API (``tests/facts/tensorrt_llm_1_2_1.json``).
"""

from __future__ import annotations

from typing import Any

from llem.config.schema import (
    DType,
    ExperimentConfig,
    TensorRTConfig,
    TensorRTKvCacheConfig,
    TensorRTQuantConfig,
    TensorRTSamplingConfig,
    TensorRTSchedulerConfig,
)
from llem.engines.tensorrt.capabilities import beam_width, table

# llem fields passed to the LLM under the same name, when set.
PLAIN_LLM_FIELDS = (
    "max_batch_size",
    "max_num_tokens",
    "max_seq_len",
    "max_input_len",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "enable_chunked_prefill",
)
# SamplingParams fields of llem's tensorrt.sampling passed under the same name, when set.
PLAIN_SAMPLING_FIELDS = (
    "n",
    "best_of",
    "use_beam_search",
    "length_penalty",
    "presence_penalty",
    "frequency_penalty",
    "ignore_eos",
    "end_id",
    "pad_id",
)
# Every argument llem derives from its own fields: passthrough_kwargs may not set them again.
LLEM_SET_KEYS = frozenset(
    {
        "model",
        "tokenizer",
        "dtype",
        "kv_cache_config",
        "scheduler_config",
        "quant_config",
        "max_beam_width",
        "fast_build",
    }
    | set(PLAIN_LLM_FIELDS)
    | {"max_tokens", "min_tokens", "temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed"}
    | set(PLAIN_SAMPLING_FIELDS)
)
# KV-cache defaults where TensorRT-LLM's own would mislead a measurement.
MEASUREMENT_KV_CACHE = {"enable_block_reuse": False}  # a repeated prompt would be served from the cache


def _set(section: Any) -> dict[str, Any]:
    """The fields of a dataclass section that are not None (enums as their values)."""
    if section is None:
        return {}
    return {k: (v.value if hasattr(v, "value") else v) for k, v in vars(section).items() if v is not None}


def section(cfg: ExperimentConfig) -> TensorRTConfig:
    """The ``tensorrt`` section, defaults where unset."""
    return cfg.tensorrt or TensorRTConfig(quant=None, kv_cache=None, scheduler=None, sampling=None)


def sampling_section(cfg: ExperimentConfig) -> TensorRTSamplingConfig:
    return section(cfg).sampling or TensorRTSamplingConfig()


def kv_cache_kwargs(t: TensorRTConfig) -> dict[str, Any]:
    """``KvCacheConfig`` fields: llem's measurement defaults, then the fields set."""
    return {**MEASUREMENT_KV_CACHE, **_set(t.kv_cache or TensorRTKvCacheConfig())}


def llm_kwargs(cfg: ExperimentConfig, model: str, dtype: DType) -> dict[str, Any]:
    """Keyword arguments of the LLM class ``tensorrt.engine`` selects, for ``model`` (a Hugging Face folder or
    hub id, or a built engine folder). Nested configs are dicts: ``kv_cache_config``, ``scheduler_config``,
    ``quant_config`` (TensorRT path only). Fields left at None are not passed (TensorRT-LLM's default)."""
    t = section(cfg)
    kwargs: dict[str, Any] = {
        "model": model,
        "tokenizer": model,  # kept when a cached engine replaces the model
        "dtype": dtype.value,
        "kv_cache_config": kv_cache_kwargs(t),
    }
    for name in PLAIN_LLM_FIELDS:
        value = getattr(t, name)
        if value is not None:
            kwargs[name] = value
    width = beam_width(t)
    if t.max_beam_width is not None or width > 1:
        kwargs["max_beam_width"] = t.max_beam_width or width
    if scheduler := _set(t.scheduler or TensorRTSchedulerConfig()):
        kwargs["scheduler_config"] = scheduler
    if table(t).builds_engine:
        if quant := _set(t.quant or TensorRTQuantConfig()):
            kwargs["quant_config"] = quant
        if t.fast_build is not None:
            kwargs["fast_build"] = t.fast_build
    return kwargs


def build_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """What shapes a built engine: every LLM argument but the model and the runtime-only configs."""
    runtime_only = {"model", "tokenizer", "kv_cache_config", "scheduler_config", "enable_chunked_prefill"}
    return {k: v for k, v in sorted(kwargs.items()) if k not in runtime_only}


def sampling_kwargs(cfg: ExperimentConfig, forced_tokens: int | None, room: int) -> dict[str, Any]:
    """Keyword arguments of ``SamplingParams`` for one prompt.

    ``forced_tokens`` (synthetic prompts, warm-up) sets ``min_tokens = max_tokens``: exactly that many
    tokens, EOS or not. ``room`` caps ``max_tokens`` when ``max_output_tokens`` is unset (TensorRT-LLM's
    own default would be 32): the context length less the longest prompt, tokens. Greedy decoding is
    ``top_k=1`` (TensorRT-LLM's rule: no beam search, top_k 1, top_p unset).
    """
    d = cfg.decoder
    s = sampling_section(cfg)
    kwargs: dict[str, Any] = {"repetition_penalty": d.repetition_penalty, "seed": cfg.random_seed}
    if not s.use_beam_search:  # beam search ranks beams: top_k, top_p and temperature do not apply
        kwargs.update(_token_choice(cfg))
    max_tokens = cfg.max_output_tokens if cfg.max_output_tokens is not None else room
    min_tokens = d.min_new_tokens
    if forced_tokens is not None:
        max_tokens = min_tokens = forced_tokens
    kwargs["max_tokens"] = max_tokens
    if min_tokens is not None:
        kwargs["min_tokens"] = min_tokens
    for name in PLAIN_SAMPLING_FIELDS:
        value = getattr(s, name)
        if value is not None:
            kwargs[name] = value
    return kwargs


def _token_choice(cfg: ExperimentConfig) -> dict[str, Any]:
    """How each token is chosen outside beam search: greedy (``top_k=1``) or sampled."""
    d = cfg.decoder
    if not (d.do_sample and d.temperature > 0):
        return {"top_k": 1}
    kwargs: dict[str, Any] = {"temperature": d.temperature, "top_p": d.top_p}
    if d.top_k:
        kwargs["top_k"] = d.top_k
    if d.min_p is not None:
        kwargs["min_p"] = d.min_p
    return kwargs
