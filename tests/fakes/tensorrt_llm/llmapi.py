"""Fake ``tensorrt_llm.llmapi``: the config classes llem builds, recording what they were given, and the
enums and argument classes, all from the recorded 1.2.1 API."""

from __future__ import annotations

from enum import Enum
from typing import Any

from tests.fakes.tensorrt_llm.api import default, facts, fields, llm_fields


class _Config:
    """A pydantic-like config that accepts only the recorded fields and keeps the given values."""

    section = ""

    def __init__(self, **kwargs: Any) -> None:
        known = fields(self.section)
        unknown = set(kwargs) - set(known)
        if unknown:
            raise ValueError(f"{self.section}: extra inputs are not permitted: {sorted(unknown)}")
        self.given = kwargs
        for name, spec in known.items():
            setattr(self, name, kwargs.get(name, default(spec)))

    def model_dump(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in fields(self.section)}


class KvCacheConfig(_Config):
    section = "KvCacheConfig"


class SchedulerConfig(_Config):
    section = "SchedulerConfig"


class QuantConfig(_Config):
    section = "QuantConfig"


QuantAlgo = Enum("QuantAlgo", {name: name for name in facts()["QuantAlgo"]}, type=str)
CapacitySchedulerPolicy = Enum(
    "CapacitySchedulerPolicy", {name: name for name in facts()["CapacitySchedulerPolicy"]}, type=str
)
ContextChunkingPolicy = Enum(
    "ContextChunkingPolicy", {name: name for name in facts()["ContextChunkingPolicy"]}, type=str
)


class TorchLlmArgs:
    model_fields = llm_fields("TorchLlmArgs")


class TrtLlmArgs:
    model_fields = llm_fields("TrtLlmArgs")
