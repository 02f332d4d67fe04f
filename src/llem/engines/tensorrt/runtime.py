"""What the TensorRT-LLM engine needs around its ``LLM``: the import, the GPU, TensorRT-LLM's config
classes made from llem's dicts, llem's cache of built engines, and the settings read back from a
running engine."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from llem.errors import EngineUnavailableError
from llem.paths import cache_dir

# Where llem keeps built TensorRT engines, under its cache folder (one folder per cache key).
ENGINE_CACHE = "tensorrt-engines"
INSTALL = "pip install 'llem[tensorrt]' on a machine with an NVIDIA GPU (docs/tensorrt.md)"


def import_tensorrt_llm() -> ModuleType:
    """``import tensorrt_llm``, or an EngineUnavailableError saying how to get it."""
    try:
        import tensorrt_llm
    except ImportError as err:
        raise EngineUnavailableError(f"engine=tensorrt: 'import tensorrt_llm' failed ({err}); {INSTALL}") from err
    except (RuntimeError, OSError) as err:  # no CUDA driver, a CUDA library missing or of another version
        raise EngineUnavailableError(
            f"engine=tensorrt: 'import tensorrt_llm' failed ({err}); it needs an NVIDIA GPU with its driver and "
            "the CUDA libraries of its release: run it in llem's TensorRT-LLM image (runner.kind=docker)"
        ) from err
    return tensorrt_llm


def llm_class(path: str) -> Any:
    """The class at ``path`` (module path, a dot, class name), e.g. ``tensorrt_llm._tensorrt_engine.LLM``."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def gpus() -> tuple[int, tuple[int, int], str]:
    """Visible CUDA GPUs, the compute capability and the name of the first; an EngineUnavailableError
    when there is none."""
    import torch

    if not torch.cuda.is_available():
        raise EngineUnavailableError(
            "engine=tensorrt needs an NVIDIA GPU, and torch sees none here: run it on a GPU machine "
            "(pip install 'llem[tensorrt]'), or in llem's TensorRT-LLM image there (runner.kind=docker)"
        )
    return torch.cuda.device_count(), torch.cuda.get_device_capability(0), torch.cuda.get_device_name(0)


def api_objects(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` of :func:`llem.engines.tensorrt.args.llm_kwargs` with its dicts made into TensorRT-LLM's
    ``KvCacheConfig``, ``SchedulerConfig`` and ``QuantConfig`` (enum values into its enums)."""
    from tensorrt_llm import llmapi

    out = dict(kwargs)
    out["kv_cache_config"] = llmapi.KvCacheConfig(**kwargs["kv_cache_config"])
    if "scheduler_config" in kwargs:
        enums = {
            "capacity_scheduler_policy": llmapi.CapacitySchedulerPolicy,
            "context_chunking_policy": llmapi.ContextChunkingPolicy,
        }
        out["scheduler_config"] = llmapi.SchedulerConfig(
            **{k: enums[k](v) for k, v in kwargs["scheduler_config"].items()}
        )
    if "quant_config" in kwargs:
        out["quant_config"] = llmapi.QuantConfig(**{k: llmapi.QuantAlgo(v) for k, v in kwargs["quant_config"].items()})
    return out


def llm_arg_names(args_class: str) -> frozenset[str]:
    """Every field of TensorRT-LLM's ``TorchLlmArgs`` or ``TrtLlmArgs`` (pydantic models)."""
    from tensorrt_llm import llmapi

    return frozenset(getattr(llmapi, args_class).model_fields)


def sampling_param_names() -> frozenset[str]:
    """Every public field of TensorRT-LLM's ``SamplingParams`` (a dataclass)."""
    from tensorrt_llm import SamplingParams

    return frozenset(f.name for f in dataclasses.fields(SamplingParams) if not f.name.startswith("_"))


def is_engine_folder(path: str | Path) -> bool:
    """Whether ``path`` is a built TensorRT-LLM engine: its config.json holds pretrained_config and build_config."""
    config = Path(path) / "config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "pretrained_config" in data and "build_config" in data


def model_fingerprint(path: str) -> str:
    """What identifies the model: for a folder, each file's name, size and modification time; else the hub id."""
    folder = Path(path)
    if not folder.is_dir():
        return path
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return json.dumps([(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files])


def cache_key(model: str, build_options: dict[str, Any], version: str, gpu_name: str) -> str:
    """The cache key of a built engine: model, build options, TensorRT-LLM version and GPU model."""
    text = json.dumps(
        {"model": model_fingerprint(model), "build": build_options, "tensorrt_llm": version, "gpu": gpu_name},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def engine_cache_dir(key: str) -> Path:
    """The folder of the engine cached under ``key`` (it may not exist yet)."""
    return cache_dir() / ENGINE_CACHE / key


def save_engine(llm: Any, target: Path) -> None:
    """Save ``llm``'s built engine to ``target``: written beside it, then renamed into place, so a
    half-written engine is never found; an engine another job saved first is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.partial-{id(llm)}")
    llm.save(str(partial))
    try:
        partial.rename(target)
    except OSError:  # saved meanwhile by another job: theirs stays
        import shutil

        shutil.rmtree(partial, ignore_errors=True)


def _dump(value: Any) -> Any:
    """A TensorRT-LLM config object as plain data (pydantic ``model_dump``, a ``to_dict``, else as is)."""
    for method in ("model_dump", "to_dict"):
        if hasattr(value, method):
            return json.loads(json.dumps(getattr(value, method)(), default=str))
    return value.value if hasattr(value, "value") else value


# LLM arguments read back from ``llm.args`` after the engine started (TensorRT-LLM fills some of them).
READ_BACK = (
    "dtype",
    "max_batch_size",
    "max_num_tokens",
    "max_seq_len",
    "max_input_len",
    "max_beam_width",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "enable_chunked_prefill",
    "kv_cache_config",
    "scheduler_config",
)


def effective_settings(llm: Any, builds_engine: bool) -> dict[str, Any]:
    """The values TensorRT-LLM used, read back from ``llm.args``; on the TensorRT path also the quant and
    build configs of the engine (its build_config holds what a built engine was built with)."""
    settings = {name: _dump(getattr(llm.args, name, None)) for name in READ_BACK}
    if builds_engine:
        settings["quant_config"] = _dump(getattr(llm.args, "quant_config", None))
        build = getattr(llm.args, "build_config", None)
        shape = ("max_batch_size", "max_input_len", "max_seq_len", "max_beam_width", "max_num_tokens", "opt_batch_size")
        settings["build_config"] = {k: getattr(build, k, None) for k in shape} if build is not None else None
    return settings


def context_length(llm: Any, model_path: str) -> int | None:
    """Tokens per sequence the running engine allows: ``max_seq_len`` as TensorRT-LLM set it, the built
    engine's, else the model's ``max_position_embeddings``; None when none is known."""
    from llem.models.config_file import local_model_config

    build = getattr(llm.args, "build_config", None)
    for value in (getattr(llm.args, "max_seq_len", None), getattr(build, "max_seq_len", None)):
        if value:
            return int(value)
    config = local_model_config(model_path) or {}
    return config.get("max_position_embeddings")
