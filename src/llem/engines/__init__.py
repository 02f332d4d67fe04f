"""Inference engines behind one protocol (:class:`llem.engines.base.InferenceEngine`)."""

from __future__ import annotations

import importlib.util

from llem.config.schema import Engine, ExperimentConfig
from llem.engines.base import InferenceEngine
from llem.errors import EngineUnavailableError

# The package each engine needs, and how to install it.
ENGINE_PACKAGES: dict[Engine, tuple[str, str]] = {
    Engine.transformers: ("transformers", "pip install llem"),
    Engine.vllm: ("vllm", "pip install 'llem[vllm]' (Linux, CUDA GPU), or run it with runners.vllm=docker"),
    Engine.tensorrt: ("tensorrt_llm", "pip install 'llem[tensorrt]' (CUDA GPU), or use runners.tensorrt=docker"),
}


def is_available(engine: Engine) -> bool:
    """Whether the engine's package can be imported here."""
    return importlib.util.find_spec(ENGINE_PACKAGES[engine][0]) is not None


def create_engine(cfg: ExperimentConfig) -> InferenceEngine:
    """The engine ``cfg.engine`` selects; a clear error when it cannot run here."""
    package, install = ENGINE_PACKAGES[cfg.engine]
    if not is_available(cfg.engine):
        raise EngineUnavailableError(f"engine={cfg.engine.value} needs the '{package}' package: {install}")
    if cfg.engine is Engine.transformers:
        from llem.engines.transformers.engine import TransformersEngine

        return TransformersEngine(cfg)
    raise EngineUnavailableError(
        f"engine={cfg.engine.value}: its configuration is complete, but this llem release measures "
        "only engine=transformers"
    )
