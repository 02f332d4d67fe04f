"""Plain data -> a validated :class:`ExperimentConfig`, its JSON form and its hash.

Used for experiment files, study experiments and Hydra-composed configs alike, so every path into
a measurement runs the same checks. Nothing here imports Hydra's composition machinery or torch.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.resources
import json
import typing
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

import yaml

from llem.config.engines import ENGINE_ALIASES, SUBSECTION_ALIASES
from llem.config.fields import ConfigIssue, _unwrap_optional, check_mapping, field_types
from llem.config.rules import check_rules
from llem.config.schema import DecoderPreset, Engine, ExperimentConfig
from llem.errors import ConfigError

# Accepted spellings of section names, and what llem calls them.
SECTION_ALIASES: dict[tuple[str, ...], str] = {
    **{(alias,): engine for alias, engine in ENGINE_ALIASES.items()},
    **SUBSECTION_ALIASES,
}


@functools.cache
def group_option_values(group: str, option: str) -> dict[str, Any]:
    """The values a config group option sets, read from the packaged ``conf/<group>/<option>.yaml``."""
    text = (importlib.resources.files("llem.conf") / group / f"{option}.yaml").read_text()
    return yaml.safe_load(text) or {}


def decoder_preset_values(preset: str) -> dict[str, Any]:
    """The decoder fields a preset sets (``conf/decoder/<preset>.yaml``, its ``preset`` key aside)."""
    return {k: v for k, v in group_option_values("decoder", preset).items() if k != "preset"}


def fill_engine_section(data: dict[str, Any]) -> None:
    """Give the selected engine the section its ``conf/engine/<engine>.yaml`` option creates.

    A Hydra-composed experiment gets it from the ``engine`` group; a file or study experiment gets
    the same here, so both routes resolve to the same config and the same hash.
    """
    engine = data.get("engine", Engine.transformers.value)
    engine = engine.value if isinstance(engine, Enum) else engine
    if not isinstance(engine, str) or engine not in Engine.__members__:
        return  # reported by the schema check with the allowed values
    section = group_option_values("engine", engine).get(engine) or {}
    if data.get(engine) is None:
        data[engine] = _deep_copy(section)
    elif isinstance(data[engine], dict):
        data[engine] = deep_merge(section, data[engine])


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: nested mappings merge key by key, anything else replaces."""
    out = _deep_copy(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = _deep_copy(value)
    return out


def normalize(data: Mapping[str, Any]) -> dict[str, Any]:
    """Rename section aliases (``pytorch`` -> ``transformers``, ``tensorrt.quant_config`` -> ``quant``)."""
    out = _deep_copy(data)
    for path, new in SECTION_ALIASES.items():
        *parents, old = path
        node = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict) or old not in node:
            continue
        where = ".".join(parents)
        if new in node:
            shown = f"{where}.{old}" if where else old
            raise ConfigError(f"{shown}: alias of {new}; both are set, keep one")
        node[new] = node.pop(old)
    return out


def _deep_copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {str(k): _deep_copy(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_deep_copy(v) for v in data]
    return data


def apply_decoder_preset(data: dict[str, Any], explicit: Iterable[str] | None = None) -> None:
    """Fill the preset's values into ``data['decoder']`` where the user set nothing explicitly.

    ``explicit`` names the decoder keys the user set; by default, the keys present in the data.
    """
    decoder = data.get("decoder")
    if not isinstance(decoder, dict) or decoder.get("preset") in (None, ""):
        return
    preset = decoder["preset"]
    preset = preset.value if isinstance(preset, Enum) else preset
    if not isinstance(preset, str) or preset not in DecoderPreset.__members__:
        return  # reported by the schema check with the allowed values
    chosen = set(decoder) if explicit is None else set(explicit)
    for key, value in decoder_preset_values(preset).items():
        if key not in chosen:
            decoder[key] = value


def build(cls: type, data: Mapping[str, Any]) -> Any:
    """Construct dataclass ``cls`` from checked data, converting enums and nested sections.

    An optional section or mapping left entirely at its defaults becomes ``None`` (see
    :mod:`llem.config.schema`), whichever way it was written (absent, ``{}``, every field null).
    """
    inner_types = _inner_types(cls)
    kwargs = {key: _build_value(inner_types[key], value) for key, value in data.items()}
    cfg = cls(**kwargs)
    for name, unset in _unset_forms(cls).items():
        if name not in kwargs or getattr(cfg, name) == unset:
            setattr(cfg, name, None)
    return cfg


@functools.cache
def _unset_forms(cls: type) -> dict[str, Any]:
    """Optional fields of ``cls`` whose default is a fresh section or mapping, and what that default
    looks like once built (the section's own built defaults, or ``{}``)."""
    types = field_types(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        inner, optional = _unwrap_optional(types[f.name])
        if optional and f.default_factory is not dataclasses.MISSING:
            out[f.name] = build(inner, {}) if dataclasses.is_dataclass(inner) else {}
    return out


def with_unset_sections(cfg: Any) -> Any:
    """``to_dict(cfg)`` with every unset (``None``) section written out at its defaults, the shape
    Hydra's schema gives it; the inverse of what :func:`build` does to unset sections. The filled-in
    defaults are shared between calls: read the result, do not modify it."""
    names = _field_names(type(cfg))
    if names is None:
        return to_dict(cfg)
    unset = _unset_defaults(type(cfg))
    out = {}
    for name in names:
        value = getattr(cfg, name)
        out[name] = unset[name] if value is None and name in unset else with_unset_sections(value)
    return out


def fill_unset_sections(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """:func:`with_unset_sections` of a config already in its JSON form (``to_dict`` of a ``cls``),
    without converting it again. Copies only the mappings it changes; shares the filled-in defaults."""
    unset, sections = _unset_defaults(cls), _section_types(cls)
    out = dict(data)
    for name, value in data.items():
        if value is None and name in unset:
            out[name] = unset[name]
        elif name in sections and isinstance(value, dict):
            out[name] = fill_unset_sections(sections[name], value)
    return out


@functools.cache
def _section_types(cls: type) -> dict[str, type]:
    """The fields of ``cls`` that hold a nested section, and the section's class."""
    return {name: inner for name, inner in _inner_types(cls).items() if dataclasses.is_dataclass(inner)}


@functools.cache
def _unset_defaults(cls: type) -> dict[str, Any]:
    """The JSON form of the default of each optional section of ``cls`` that may be unset."""
    factories = {f.name: f.default_factory for f in dataclasses.fields(cls)}
    return {name: to_dict(factories[name]()) for name in _unset_forms(cls)}


@functools.cache
def _inner_types(cls: type) -> dict[str, Any]:
    """Each field's type with ``Optional`` removed."""
    return {name: _unwrap_optional(tp)[0] for name, tp in field_types(cls).items()}


def _build_value(inner: Any, value: Any) -> Any:
    if value is None:
        return None
    if dataclasses.is_dataclass(inner):
        return build(inner, value)
    if isinstance(inner, type) and issubclass(inner, Enum):
        return inner(value.value if isinstance(value, Enum) else value)
    if inner is float and isinstance(value, int):
        return float(value)
    if typing.get_origin(inner) in (list, typing.List):  # noqa: UP006
        return list(value)
    if typing.get_origin(inner) in (dict, typing.Dict):  # noqa: UP006
        return _deep_copy(value)
    return value


def issues_of(
    data: Mapping[str, Any], explicit_decoder_keys: Iterable[str] | None = None
) -> tuple[ExperimentConfig | None, list[ConfigIssue]]:
    """Validate experiment data: the built config (None when the schema check fails) and all issues."""
    data = normalize(data)
    fill_engine_section(data)
    apply_decoder_preset(data, explicit_decoder_keys)
    issues = check_mapping(ExperimentConfig, data)
    if issues:
        return None, issues
    cfg = build(ExperimentConfig, data)
    conflicts = apply_synthetic_lengths(cfg)
    return cfg, conflicts + check_rules(cfg)


@functools.cache
def _default_max_output_tokens() -> tuple[int | None, ...]:
    """``max_output_tokens`` when nobody set it: the schema's default (study and experiment files) and
    the primary config's (``python -m llem``). An explicit value equal to one of them reads as unset."""
    schema = {f.name: f.default for f in dataclasses.fields(ExperimentConfig)}["max_output_tokens"]
    primary = yaml.safe_load((importlib.resources.files("llem.conf") / "config.yaml").read_text())
    return schema, primary.get("max_output_tokens", schema)


def apply_synthetic_lengths(cfg: ExperimentConfig) -> list[ConfigIssue]:
    """``dataset.output_len`` of synthetic prompts is the output length that runs: it sets
    ``max_output_tokens`` and ``decoder.min_new_tokens``, so the recorded config is what ran. Either
    set to another value (other than a default) is a conflict, not overridden."""
    out_len = cfg.dataset.output_len
    if cfg.dataset.source != "synthetic" or out_len is None:
        return []
    conflicts = [
        ConfigIssue(path, f"{value} differs from dataset.output_len ({out_len}), which sets it: remove one")
        for path, value, unset in (
            ("max_output_tokens", cfg.max_output_tokens, _default_max_output_tokens()),
            ("decoder.min_new_tokens", cfg.decoder.min_new_tokens, (None,)),
        )
        if value not in (*unset, out_len)
    ]
    if not conflicts:
        cfg.max_output_tokens = cfg.decoder.min_new_tokens = out_len
    return conflicts


def load_experiment(data: Mapping[str, Any], explicit_decoder_keys: Iterable[str] | None = None) -> ExperimentConfig:
    """A validated :class:`ExperimentConfig`; raises :class:`ConfigError` listing every issue."""
    cfg, issues = issues_of(data, explicit_decoder_keys)
    if issues:
        raise ConfigError(format_issues(issues))
    assert cfg is not None
    return cfg


def format_issues(issues: list[ConfigIssue]) -> str:
    """A readable, one-issue-per-line message."""
    head = "invalid configuration" if len(issues) == 1 else f"invalid configuration ({len(issues)} problems)"
    return head + ":\n" + "\n".join(f"  - {issue}" for issue in issues)


def to_dict(cfg: Any) -> Any:
    """The JSON form of a config dataclass: enums as their values, sections as dicts."""
    kind = type(cfg)
    if kind in _SCALARS:
        return cfg
    names = _field_names(kind)
    if names is not None:
        return {name: to_dict(getattr(cfg, name)) for name in names}
    if isinstance(cfg, Enum):
        return cfg.value
    if isinstance(cfg, Mapping):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    return cfg


_SCALARS = frozenset({str, int, float, bool, type(None)})


@functools.cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """The field names of dataclass ``cls``; None for any other type."""
    if not dataclasses.is_dataclass(cls):
        return None
    return tuple(f.name for f in dataclasses.fields(cls))


# Fields that say where results go, not what is measured: left out of the hash.
UNHASHED_FIELDS = ("output_dir",)


def config_hash(cfg: ExperimentConfig) -> str:
    """16 hex chars of SHA-256 over the canonical JSON of what is measured."""
    return config_dict_hash(to_dict(cfg))


def config_dict_hash(data: Mapping[str, Any]) -> str:
    """:func:`config_hash` of a config already in its JSON form (``to_dict``)."""
    data = {key: value for key, value in data.items() if key not in UNHASHED_FIELDS}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
