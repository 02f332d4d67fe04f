"""What the vLLM engine needs around ``vllm.LLM``: device and dtype defaults, the environment vLLM reads
at import, the model's shapes, and the settings read back from a running engine."""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from llem.config.schema import DType, LoRAConfig
from llem.errors import EngineUnavailableError

# Environment llem sets for vLLM unless the user did. On a CPU the engine runs in the worker process
# (no EngineCore child: ~55 s less per start, and every thread in llem's process group).
CPU_ENVIRONMENT = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
COMMON_ENVIRONMENT = {"VLLM_LOGGING_LEVEL": "WARNING"}  # vLLM's INFO lines would bury llem's own
# Environment variables recorded with the result: what shapes vLLM's CPU and process behaviour.
RECORDED_ENVIRONMENT = (
    "VLLM_ENABLE_V1_MULTIPROCESSING",
    "VLLM_CPU_KVCACHE_SPACE",
    "VLLM_CPU_OMP_THREADS_BIND",
    "VLLM_CPU_NUM_OF_RESERVED_CPU",
    "OMP_NUM_THREADS",
    "VLLM_ATTENTION_BACKEND",
    "VLLM_LOGGING_LEVEL",
)
BROKEN_COMPANIONS = "pip uninstall -y torchvision torchaudio torchcodec"


def device() -> str:
    """``cuda`` when torch sees a CUDA GPU (the CUDA build of vLLM), else ``cpu`` (vllm-cpu)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_dtype(on: str) -> DType:
    """``dtype`` left unset: bfloat16 on a GPU, and on a CPU with native bfloat16; float32 on other CPUs,
    where vLLM's bfloat16 kernels emulate it and run slower."""
    if on == "cuda" or cpu_has_bf16():
        return DType.bfloat16
    return DType.float32


def set_environment(on: str) -> dict[str, str]:
    """Set llem's defaults for vLLM's environment (never over the user's), before vLLM is imported.

    Returns the recorded variables as vLLM will read them.
    """
    defaults = {**COMMON_ENVIRONMENT, **(CPU_ENVIRONMENT if on == "cpu" else {})}
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    return {key: os.environ[key] for key in RECORDED_ENVIRONMENT if key in os.environ}


def import_vllm() -> ModuleType:
    """``import vllm``, or an EngineUnavailableError that says how to repair the install."""
    try:
        import vllm
    except ImportError as err:
        raise EngineUnavailableError(f"engine=vllm: 'import vllm' failed ({err})") from err
    except (RuntimeError, OSError) as err:  # e.g. a CUDA torchvision beside the CPU torch
        raise EngineUnavailableError(
            f"engine=vllm: 'import vllm' failed ({err}); a torchvision, torchaudio or torchcodec built for "
            f"another torch breaks it: {BROKEN_COMPANIONS}"
        ) from err
    return vllm


@functools.cache
def engine_arg_names() -> frozenset[str]:
    """Every field of vLLM's ``EngineArgs``."""
    from vllm.engine.arg_utils import EngineArgs

    return frozenset(f.name for f in dataclasses.fields(EngineArgs))


@functools.cache
def sampling_param_names() -> frozenset[str]:
    """Every public field of vLLM's ``SamplingParams``."""
    from vllm import SamplingParams

    return frozenset(name for name in SamplingParams.__struct_fields__ if not name.startswith("_"))


def head_size(path: str) -> int | None:
    """The attention head size of the model (a local folder or the hub cache); None when it cannot be read."""
    from llem.models.config_file import local_model_config

    config = local_model_config(path)
    config = config.get("text_config", config) if config else None
    if not config or "num_attention_heads" not in config:
        return None
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def lora_request(lora: LoRAConfig) -> Any:
    """The ``LoRARequest`` of the configured adapter (a local folder or a hub id)."""
    from vllm.lora.request import LoRARequest

    return LoRARequest("llem-adapter", 1, lora.adapter_path or lora.adapter_id)


def effective_engine_settings(llm: Any) -> dict[str, Any]:
    """The values vLLM chose, read back from the engine's ``VllmConfig`` (the copy in this process: with
    multiprocessing, settings the EngineCore process changes later are not seen here)."""
    config = llm.llm_engine.vllm_config
    model, cache, scheduler, parallel = (
        config.model_config,
        config.cache_config,
        config.scheduler_config,
        config.parallel_config,
    )
    compilation = config.compilation_config
    return {
        "dtype": str(model.dtype).removeprefix("torch."),
        "max_model_len": model.max_model_len,
        "quantization": model.quantization,
        "enforce_eager": model.enforce_eager,
        "block_size": cache.block_size,
        "kv_cache_dtype": cache.cache_dtype,
        "enable_prefix_caching": cache.enable_prefix_caching,
        "gpu_memory_utilization": cache.gpu_memory_utilization,
        "kv_cache_memory_bytes": cache.kv_cache_memory_bytes,
        "num_kv_cache_blocks": cache.num_gpu_blocks,
        "cpu_offload_gb": config.offload_config.uva.cpu_offload_gb,
        "max_num_seqs": scheduler.max_num_seqs,
        "max_num_batched_tokens": scheduler.max_num_batched_tokens,
        "enable_chunked_prefill": scheduler.enable_chunked_prefill,
        "async_scheduling": getattr(scheduler, "async_scheduling", None),
        "tensor_parallel_size": parallel.tensor_parallel_size,
        "pipeline_parallel_size": parallel.pipeline_parallel_size,
        "distributed_executor_backend": str(parallel.distributed_executor_backend),
        "compilation_mode": str(compilation.mode),
        "cudagraph_mode": str(compilation.cudagraph_mode),
        "speculative_config": str(config.speculative_config) if config.speculative_config else None,
    }


def cpu_threads() -> dict[str, Any]:
    """The threads vLLM's CPU worker computes with, in this process: torch's count and the cores bound."""
    import torch

    return {"torch_threads": torch.get_num_threads(), "cores": sorted(os.sched_getaffinity(0))}


def in_process() -> bool:
    """Whether vLLM runs its engine in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``)."""
    return os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1") == "0"


def memory_facts(llm: Any, on: str) -> dict[str, Any]:
    """KV-cache size; on CUDA, with the engine in this process, torch's peak memory of the model's GPU.

    With multiprocessing the model lives in vLLM's EngineCore and worker processes, whose peaks this
    process cannot read: the telemetry's NVML memory figures cover them instead.
    """
    cache = llm.llm_engine.vllm_config.cache_config if llm is not None else None
    facts: dict[str, Any] = {}
    if cache is not None and cache.num_gpu_blocks:
        facts["kv_cache_blocks"] = cache.num_gpu_blocks
        facts["kv_cache_tokens"] = cache.num_gpu_blocks * cache.block_size
    if on == "cuda" and in_process():
        import torch

        facts["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
        facts["cuda_peak_reserved_mb"] = torch.cuda.max_memory_reserved() / 2**20
    elif on == "cuda":
        facts["cuda_peak_note"] = "vLLM ran in its own processes: see telemetry memory_used_mb (NVML)"
    return facts
