"""What vLLM 0.32 accepts, in one table, and the rules that read it before any model loads.

The enums of :mod:`llem.config.schema` hold the values vLLM accepts on some device (dtypes,
quantisation methods, KV-cache dtypes); :data:`CPU` and :data:`CUDA` narrow them per device and are
checked in the worker once the device is known, still before the model loads. Nothing here imports
vLLM: the study layer validates thousands of experiments with these rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from llem.config.fields import ConfigIssue
from llem.config.schema import DType, ExperimentConfig, VllmEngineConfig, VllmKvCacheDType

# The vLLM release these tables and the argument mapping follow (the contract test checks it).
VLLM_VERSION = "0.32"


@dataclass(frozen=True)
class DeviceTable:
    """What one kind of device runs under vLLM."""

    name: str
    dtypes: frozenset[DType]
    kv_cache_dtypes: frozenset[VllmKvCacheDType]
    block_size_multiple: int  # the attention kernel's block-size granularity, tokens
    head_sizes: frozenset[int] | None  # attention head sizes the kernels support; None = any


# vLLM's CPU attention backend (CPU_ATTN): block sizes in multiples of 32, the head sizes of its kernels.
CPU = DeviceTable(
    name="CPU",
    dtypes=frozenset({DType.float32, DType.float16, DType.bfloat16}),
    kv_cache_dtypes=frozenset(
        {VllmKvCacheDType.auto, VllmKvCacheDType.fp8, VllmKvCacheDType.fp8_e4m3, VllmKvCacheDType.fp8_e5m2}
    ),
    block_size_multiple=32,
    head_sizes=frozenset({32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512}),
)
# CUDA attention backends (FlashAttention, FlashInfer, Triton): block sizes in multiples of 16.
CUDA = DeviceTable(
    name="CUDA GPU",
    dtypes=frozenset({DType.float32, DType.float16, DType.bfloat16}),
    kv_cache_dtypes=frozenset(VllmKvCacheDType),
    block_size_multiple=16,
    head_sizes=None,
)

# llem's defaults where vLLM's own would mislead a measurement or fail on a CPU.
CPU_KV_CACHE_BYTES = 2**30  # KV cache on a CPU when none is set (vLLM would try to reserve 92 % of RAM)


def config_issues(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    """Issues of the ``vllm`` section that hold on every device."""
    assert cfg.vllm is not None
    engine, sampling, beam = cfg.vllm.engine, cfg.vllm.sampling, cfg.vllm.beam_search
    if engine is not None:
        yield from _engine_issues(engine)
    if beam is not None:
        if sampling is not None:
            yield ConfigIssue(
                "vllm.beam_search", "replaces sampling: remove the vllm.sampling fields, or the vllm.beam_search ones"
            )
        if cfg.decoder.do_sample and cfg.decoder.temperature > 0:
            yield ConfigIssue(
                "vllm.beam_search",
                "beam search with sampling: set decoder.do_sample=false (or decoder=deterministic)",
            )
    if beam is None:
        low = sampling.min_tokens if sampling and sampling.min_tokens is not None else cfg.decoder.min_new_tokens
        high = sampling.max_tokens if sampling and sampling.max_tokens is not None else cfg.max_output_tokens
        if low is not None and high is not None and low > high:
            key = (
                "vllm.sampling.min_tokens" if sampling and sampling.min_tokens is not None else "decoder.min_new_tokens"
            )
            yield ConfigIssue(key, f"{low} is above the maximum of {high} output tokens")


def _engine_issues(engine: VllmEngineConfig) -> Iterator[ConfigIssue]:
    if engine.kv_cache_memory_bytes is not None and engine.gpu_memory_utilization is not None:
        yield ConfigIssue(
            "vllm.engine.kv_cache_memory_bytes",
            "cannot be combined with vllm.engine.gpu_memory_utilization: set one of them",
        )
    spec = engine.speculative_config
    if spec is not None and spec.model is None and spec.method is None:
        yield ConfigIssue("vllm.engine.speculative_config", "needs a draft model or a method (e.g. ngram)")
    attention = engine.attention_config
    if attention is not None and attention.flash_attn_version not in (None, 2, 3, 4):
        yield ConfigIssue(
            "vllm.engine.attention_config.flash_attn_version", f"must be 2, 3 or 4, got {attention.flash_attn_version}"
        )
    offload = ("offload_num_in_group", "offload_prefetch_step", "offload_params")
    if not engine.offload_group_size and any(getattr(engine, name) is not None for name in offload):
        yield ConfigIssue("vllm.engine.offload_group_size", "needed by the other offload_* fields (layers per group)")


def device_issues(cfg: ExperimentConfig, table: DeviceTable, dtype: DType, head_size: int | None) -> list[str]:
    """What ``cfg`` asks that ``table``'s device cannot run (checked in the worker, before the model loads)."""
    engine = cfg.vllm.engine if cfg.vllm else None
    issues = []
    if dtype not in table.dtypes:
        names = ", ".join(sorted(d.value for d in table.dtypes))
        issues.append(f"dtype: vLLM on a {table.name} runs {names}, not {dtype.value}")
    if engine is not None and engine.kv_cache_dtype is not None and engine.kv_cache_dtype not in table.kv_cache_dtypes:
        names = ", ".join(sorted(d.value for d in table.kv_cache_dtypes))
        issues.append(f"vllm.engine.kv_cache_dtype: vLLM on a {table.name} supports {names}")
    if engine is not None and engine.block_size is not None and engine.block_size % table.block_size_multiple:
        issues.append(
            f"vllm.engine.block_size: vLLM on a {table.name} needs a multiple of {table.block_size_multiple}, "
            f"got {engine.block_size}"
        )
    if table.head_sizes is not None and head_size is not None and head_size not in table.head_sizes:
        sizes = ", ".join(str(s) for s in sorted(table.head_sizes))
        issues.append(f"model: attention head size {head_size}; vLLM on a {table.name} supports {sizes}")
    return issues
