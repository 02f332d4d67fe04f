"""The sweep grammar: independent axes, engine-scoped axes, dependent groups, explicit experiments.

A list of scalars is an axis; a list of mappings is a dependent group of alternative variants.
Each engine of the study gets the product of the universal axes and groups with its own scoped
ones. Explicit ``experiments:`` follow the sweep's experiments. Output: plain experiment dicts,
not yet validated (the planner validates them, lists the invalid ones and merges duplicates).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llem.config.engines import ENGINE_ALIASES, ENGINE_NAMES, SUBSECTION_ALIASES
from llem.config.load import deep_merge
from llem.errors import ConfigError
from llem.study.spec import StudySpec

# Renamed sub-sections inside an engine (first two path segments).


@dataclass(frozen=True)
class Assignment:
    """One value set on one dotted path, and where in the study it came from."""

    path: str
    value: Any
    source: str


@dataclass(frozen=True)
class Axis:
    """An independent axis (one assignment per choice) or a dependent group (a set per variant)."""

    key: str  # as written in the study
    engine: str | None  # None: applies to every engine
    choices: tuple[tuple[Assignment, ...], ...]  # the alternatives; the product crosses axes
    is_group: bool = False


@dataclass
class ExpandedExperiment:
    """An experiment's raw config and a description of where it came from."""

    data: dict[str, Any]
    origin: str  # e.g. "sweep" or "experiments[2]"
    sources: tuple[Assignment, ...] = ()


def route(key: str) -> tuple[str | None, str]:
    """``(engine or None, canonical dotted path)`` of a sweep key (``pytorch.x`` -> transformers)."""
    parts = key.split(".")
    parts[0] = ENGINE_ALIASES.get(parts[0], parts[0])
    if len(parts) > 1 and (parts[0], parts[1]) in SUBSECTION_ALIASES:
        parts[1] = SUBSECTION_ALIASES[(parts[0], parts[1])]
    engine = parts[0] if parts[0] in ENGINE_NAMES and len(parts) > 1 else None
    return engine, ".".join(parts)


def _axis(key: str, values: Any) -> Axis:
    engine, path = route(key)
    if any(isinstance(v, Mapping) for v in values):
        raise ConfigError(
            f"sweep.{key}: mixes mappings and values; a list of scalars is an axis, a list of mappings a group"
        )
    choices = tuple((Assignment(path, v, f"sweep.{key}"),) for v in values)
    return Axis(key, engine, choices)


def _variant_choices(group: str, index: int, variant: Mapping[str, Any]) -> list[tuple[Assignment, ...]]:
    """One variant of a group, expanded: list values inside it form a mini-grid."""
    source = f"sweep.{group}[{index}]"
    fixed: list[Assignment] = []
    grids: list[list[Assignment]] = []
    for key, value in variant.items():
        _, path = route(str(key))
        if isinstance(value, Mapping):
            raise ConfigError(f"{source}.{key}: a variant's keys are full dotted paths; got a nested mapping")
        if isinstance(value, list):
            if not value:
                raise ConfigError(f"{source}.{key}: an empty list gives no variants")
            grids.append([Assignment(path, v, f"{source}.{key}") for v in value])
        else:
            fixed.append(Assignment(path, value, f"{source}.{key}"))
    return [tuple(fixed) + combo for combo in itertools.product(*grids)]


def _group(name: str, variants: list[Any]) -> Axis:
    engine, _ = route(name)
    choices: list[tuple[Assignment, ...]] = []
    for index, variant in enumerate(variants):
        if not isinstance(variant, Mapping):
            raise ConfigError(f"sweep.{name}[{index}]: a group's entries must all be mappings, got {variant!r}")
        choices += _variant_choices(name, index, variant)
    return Axis(name, engine, tuple(choices), is_group=True)


def parse_sweep(sweep: Mapping[str, Any]) -> list[Axis]:
    """The axes and groups of a ``sweep:`` block, in file order."""
    axes: list[Axis] = []
    for key, values in sweep.items():
        key = str(key)
        if not isinstance(values, list):
            raise ConfigError(f"sweep.{key}: expected a list (of values, or of mappings for a group), got {values!r}")
        if not values:
            raise ConfigError(f"sweep.{key}: the list is empty")
        is_group = all(isinstance(v, Mapping) for v in values)
        axes.append(_group(key, values) if is_group else _axis(key, values))
    axis_paths = {route(a.key)[1] for a in axes if not a.is_group}
    for group in axes:
        if group.is_group and route(group.key)[1] in axis_paths:
            raise ConfigError(f"sweep.{group.key}: a group name must not equal an axis key; rename the group")
    return axes


def study_engines(spec: StudySpec, axes: list[Axis]) -> list[str]:
    """The engines of the study: ``engine:`` (a name or a list), else inferred from scoped keys."""
    declared = spec.shared.get("engine")
    scoped = [a.engine for a in axes if a.engine]
    scoped += [route(asg.path)[0] for a in axes for c in a.choices for asg in c if route(asg.path)[0]]
    if declared is None:
        inferred = list(dict.fromkeys(e for e in scoped if e))
        return inferred or ["transformers"]
    engines = declared if isinstance(declared, list) else [declared]
    engines = [ENGINE_ALIASES.get(str(e), str(e)) for e in engines]
    for engine in engines:
        if engine not in ENGINE_NAMES:
            raise ConfigError(f"engine: unknown engine '{engine}'; choose from {', '.join(ENGINE_NAMES)}")
    for axis in axes:
        if axis.engine and axis.engine not in engines:
            raise ConfigError(
                f"sweep.{axis.key}: scoped to engine {axis.engine}, which is not in the study's engines "
                f"({', '.join(engines)}); add it to engine: or remove the key"
            )
    return engines


def nest(assignments: tuple[Assignment, ...]) -> dict[str, Any]:
    """Dotted-path assignments as a nested dict; two sources setting one leaf is an error."""
    out: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for asg in assignments:
        for other, source in owner.items():
            if asg.path == other or asg.path.startswith(other + ".") or other.startswith(asg.path + "."):
                raise ConfigError(f"{asg.path} is set twice in one experiment: by {source} and by {asg.source}")
        owner[asg.path] = asg.source
        node = out
        *parents, leaf = asg.path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = asg.value
    return out


def count_experiments(spec: StudySpec) -> int:
    """How many experiments :func:`expand_study` would give, counted without expanding anything
    (before duplicates merge). Malformed entries count as one; expanding reports them."""
    counts: list[tuple[str | None, int]] = []
    scoped: list[str] = []
    for key, values in spec.sweep.items():
        engine = route(str(key))[0]
        counts.append((engine, _count_choices(values)))
        scoped += [engine] if engine else []
        for variant in values if isinstance(values, list) else []:
            keys = variant if isinstance(variant, Mapping) else {}
            scoped += [e for e in (route(str(k))[0] for k in keys) if e]
    declared = spec.shared.get("engine")
    if declared is None:
        engines = list(dict.fromkeys(scoped)) or ["transformers"]
    else:
        engines = declared if isinstance(declared, list) else [declared]
    swept = sum(math.prod(n for scope, n in counts if scope in (None, engine)) for engine in engines)
    return (swept if spec.sweep else 0) + len(spec.experiments)


def _count_choices(values: Any) -> int:
    """Choices of one sweep entry: its values, or for a group the sum of each variant's mini-grid."""
    if not isinstance(values, list) or not values:
        return 1
    if not all(isinstance(v, Mapping) for v in values):
        return len(values)
    return sum(math.prod(len(x) if isinstance(x, list) and x else 1 for x in v.values()) for v in values)


def expand_study(spec: StudySpec) -> list[ExpandedExperiment]:
    """Every experiment of the study: the sweep's first, then the explicit ones."""
    axes = parse_sweep(spec.sweep) if spec.sweep else []
    shared = {k: v for k, v in spec.shared.items() if k != "engine"}
    expanded: list[ExpandedExperiment] = []
    if spec.sweep:
        for engine in study_engines(spec, axes):
            mine = [a for a in axes if a.engine in (None, engine)]
            for combo in itertools.product(*(a.choices for a in mine)):
                assignments = tuple(asg for choice in combo for asg in choice)
                data = deep_merge({**shared, "engine": engine}, nest(assignments))
                expanded.append(ExpandedExperiment(data, "sweep", assignments))
    declared = spec.shared.get("engine")
    for index, entry in enumerate(spec.experiments):
        base = dict(shared)
        if "engine" not in entry:
            if isinstance(declared, list):
                raise ConfigError(f"experiments[{index}]: set engine (the study lists several: {declared})")
            if declared is not None:
                base["engine"] = declared
        expanded.append(ExpandedExperiment(deep_merge(base, entry), f"experiments[{index}]"))
    return expanded
