"""Schema checks on plain data: unknown keys (with the closest valid key), wrong types, enum values.

These run on nested dicts and on single ``path=value`` overrides, without Hydra and without building
an OmegaConf object, so that a study of thousands of experiments validates in seconds. The
dataclasses of :mod:`llem.config.schema` are the only source of field names and types.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any, Union

from llem.config.schema import ExperimentConfig

# Names from earlier versions of the spec, and what replaced them.
RENAMED_KEYS: dict[str, str] = {
    "backend": "engine",
    "precision": "dtype",
    "n": "dataset.n_prompts",
    "execution": "study_execution (a study-level key)",
    "cycle_order": "study_execution.experiment_order",
    "model_name": "model",
    "fp_precision": "dtype",
    "num_input_prompts": "dataset.n_prompts",
    "extra": "passthrough_kwargs",
}


_GONE_FROM_ATTENTION = "is not in vLLM 0.32's AttentionConfig: remove it"
# Fields vLLM 0.32 no longer has (llem follows the real API), and what to do instead.
REMOVED_KEYS: dict[str, str] = {
    "vllm.engine.swap_space": "vLLM 0.32 has no CPU swap space (preempted requests are recomputed): remove it",
    "vllm.engine.num_scheduler_steps": "vLLM 0.32 has no multi-step scheduling: remove it",
    "vllm.engine.max_seq_len_to_capture": "vLLM 0.32 sizes CUDA graphs in its compilation config: use "
    "vllm.engine.compilation_config.cudagraph_capture_sizes",
    "vllm.engine.attention": "renamed after vLLM 0.32's AttentionConfig: use vllm.engine.attention_config "
    "(its engine field is now backend)",
    "vllm.engine.attention_config.engine": "renamed: use vllm.engine.attention_config.backend",
    "vllm.engine.attention_config.use_prefill_decode_attention": _GONE_FROM_ATTENTION,
    "vllm.engine.attention_config.use_cudnn_prefill": _GONE_FROM_ATTENTION,
    "vllm.engine.attention_config.disable_flashinfer_prefill": _GONE_FROM_ATTENTION,
    "vllm.engine.attention_config.use_trtllm_ragged_deepseek_prefill": _GONE_FROM_ATTENTION,
    "vllm.beam_search.early_stopping": "vLLM 0.32's BeamSearchParams has no early_stopping: remove it",
    "tensorrt.engine_path": "TensorRT-LLM 1.2 has no engine_path: pass the built engine folder as model",
    "tensorrt.sampling.beam_width": "TensorRT-LLM 1.2's SamplingParams has no beam_width: set "
    "tensorrt.sampling.use_beam_search=true with best_of (else n) beams",
}


@dataclasses.dataclass(frozen=True)
class ConfigIssue:
    """One problem found in a configuration: the dotted key and what to do about it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved type hint of each field of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


@functools.cache
def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``Optional[X]`` -> ``(X, True)``; anything else -> ``(tp, False)``."""
    if typing.get_origin(tp) is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def suggest(word: str, candidates: typing.Iterable[str]) -> str:
    """A " (did you mean X?)" hint for the closest candidate, or an empty string."""
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def unknown_key_issue(cls: type, key: str, prefix: str) -> ConfigIssue:
    """The message for ``key``, which is not a field of ``cls``."""
    path = _join(prefix, key)
    if not prefix and key in RENAMED_KEYS:
        return ConfigIssue(path, f"'{key}' was renamed: use {RENAMED_KEYS[key]}")
    if path in REMOVED_KEYS:
        return ConfigIssue(path, REMOVED_KEYS[path])
    known = list(field_types(cls))
    hint = suggest(key, known)
    return ConfigIssue(path, f"unknown key '{key}' in {cls.__name__}{hint}")


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "one of " + ", ".join(m.value for m in tp)
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    origin = typing.get_origin(tp)
    if origin in (dict, typing.Dict):  # noqa: UP006
        return "a mapping"
    if origin in (list, typing.List):  # noqa: UP006
        return "a list"
    return getattr(tp, "__name__", str(tp))


def check_value(tp: Any, value: Any, path: str, *, lenient_str: bool = False) -> list[ConfigIssue]:
    """Check ``value`` against the type hint ``tp``; recurse into dataclass fields.

    ``lenient_str`` accepts numbers and bools for ``str`` fields, as Hydra's command-line parser
    turns ``model=123`` into an int that OmegaConf then stores as a string.
    """
    inner, optional = _unwrap_optional(tp)
    if value is None:
        return [] if optional else [ConfigIssue(path, f"must not be null: expected {_type_name(inner)}")]
    kind = _kind(inner)
    if kind == "dataclass":
        if not isinstance(value, Mapping):
            return [ConfigIssue(path, f"expected {_type_name(inner)}, got {value!r}")]
        return check_mapping(inner, value, path, lenient_str=lenient_str)
    if kind == "enum":
        allowed = [m.value for m in inner]
        raw = value.value if isinstance(value, Enum) else value
        if raw in allowed:
            return []
        hint = suggest(str(raw), allowed)
        return [ConfigIssue(path, f"invalid value {raw!r}{hint}; allowed values: {', '.join(allowed)}")]
    found = None if inner is str else non_finite(value, path)  # a str field reads `model=nan` as text
    if found:
        return [ConfigIssue(found[0], f"must be a finite number, got {found[1]}")]
    if _matches(inner, value, lenient_str):
        return []
    return [ConfigIssue(path, f"expected {_type_name(inner)}, got {type(value).__name__} {value!r}")]


@functools.cache
def _kind(tp: Any) -> str:
    """``dataclass``, ``enum`` or ``value``: how :func:`check_value` checks a value of type ``tp``."""
    if dataclasses.is_dataclass(tp):
        return "dataclass"
    return "enum" if isinstance(tp, type) and issubclass(tp, Enum) else "value"


def non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """``(dotted path, number)`` of the first NaN or infinity in ``value`` (a number, or a mapping or
    list holding numbers at any depth), or None. Every bound compares false with NaN, and JSON has
    no form for either, so no config value may be one."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, value)
    if isinstance(value, Mapping):
        items: typing.Iterable[tuple[str, Any]] = ((_join(path, str(k)), v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for where, item in items:
        found = non_finite(item, where)
        if found:
            return found
    return None


def _matches(tp: Any, value: Any, lenient_str: bool) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str) or (lenient_str and isinstance(value, (int, float, bool)))
    if origin in (dict, typing.Dict):  # noqa: UP006
        return isinstance(value, Mapping)
    if origin in (list, typing.List):  # noqa: UP006
        (item,) = typing.get_args(tp) or (Any,)
        return isinstance(value, (list, tuple)) and all(_matches(item, v, lenient_str) for v in value)
    return isinstance(value, tp)


def check_mapping(cls: type, data: Mapping, prefix: str = "", *, lenient_str: bool = False) -> list[ConfigIssue]:
    """Every unknown key and wrong-typed value of ``data`` against dataclass ``cls``."""
    types = field_types(cls)
    issues: list[ConfigIssue] = []
    for key, value in data.items():
        key = str(key)
        if key not in types:
            issues.append(unknown_key_issue(cls, key, prefix))
            continue
        issues += check_value(types[key], value, _join(prefix, key), lenient_str=lenient_str)
    return issues


def field_type_at(path: str, root: type = ExperimentConfig) -> Any:
    """The type hint of the dotted ``path``; raises :class:`KeyError` with a ConfigIssue."""
    cls: Any = root
    parts = path.split(".")
    for depth, key in enumerate(parts):
        inner, _ = _unwrap_optional(cls)
        prefix = ".".join(parts[:depth])
        if not dataclasses.is_dataclass(inner):
            if typing.get_origin(inner) in (dict, typing.Dict) or inner is Any:  # noqa: UP006
                return Any  # free-form mapping (passthrough_kwargs, max_memory, ...)
            raise KeyError(ConfigIssue(path, f"'{prefix}' is not a section; it has no key '{key}'"))
        types = field_types(inner)
        if key not in types:
            raise KeyError(unknown_key_issue(inner, key, prefix))
        cls = types[key]
    return cls


def check_path_value(path: str, value: Any, root: type = ExperimentConfig) -> list[ConfigIssue]:
    """Check one ``path=value`` assignment (a command-line override or a sweep axis value)."""
    try:
        tp = field_type_at(path, root)
    except KeyError as err:
        return [err.args[0]]
    return check_value(tp, value, path, lenient_str=True)
