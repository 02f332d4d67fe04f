"""Reading study and experiment files: YAML, ``base:`` inheritance, study-level keys.

Pure Python: no Hydra composition and no torch, so planning stays fast.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from llem.config.engines import ENGINE_ALIASES, ENGINE_NAMES
from llem.config.fields import RENAMED_KEYS, check_mapping, field_types, suggest
from llem.config.load import SECTION_ALIASES, build, deep_merge
from llem.config.runners import TIMEOUT_FIELDS, runner_problem
from llem.config.safe_yaml import load_yaml_text, read_text
from llem.config.schema import ExperimentConfig
from llem.errors import ConfigError
from llem.study.limits import MIN_FILE_VALUES, RAISE_HINT, run_limit


class ExperimentOrder(str, Enum):
    """How the experiments of a study are ordered within and across cycles."""

    sequential = "sequential"
    interleave = "interleave"
    shuffle = "shuffle"
    reverse = "reverse"
    latin_square = "latin_square"


@dataclass
class StudyExecution:
    """The ``study_execution:`` block; None = the CLI default (n_cycles 3, shuffle) or user config."""

    # repetitions of the whole experiment list
    n_cycles: Optional[int] = None
    # sequential | interleave | shuffle | reverse | latin_square
    experiment_order: Optional[ExperimentOrder] = None
    # seed of the shuffle order; None = derived from the study design hash
    shuffle_seed: Optional[int] = None
    # pause between experiments, seconds; None = user config, else 0
    experiment_gap_seconds: Optional[float] = None
    # pause between cycles, seconds; None = user config, else 0
    cycle_gap_seconds: Optional[float] = None
    # circuit breaker: consecutive failures before it opens; 0 = off, 1 = fail fast
    max_consecutive_failures: int = 10
    # pause before the half-open probe run, seconds
    circuit_breaker_cooldown_seconds: float = 60.0
    # hard limit for the whole study, hours; None = no limit
    wall_clock_timeout_hours: Optional[float] = None
    # limit of each run's measurement, seconds (its worker is stopped); None = no limit
    experiment_timeout_seconds: Optional[float] = None
    # stop a run whose worker writes no output for this long, seconds; None = never
    silence_timeout_seconds: Optional[float] = None


# Keys that describe the study, not an experiment.
STUDY_KEYS = ("name", "sweep", "experiments", "study_execution", "base", "runners")


@dataclass
class StudySpec:
    """A study file, parsed: shared experiment fields plus the study-level keys."""

    path: Path | None
    name: str
    shared: dict[str, Any]
    sweep: dict[str, Any] = field(default_factory=dict)
    experiments: list[dict[str, Any]] = field(default_factory=list)
    execution: StudyExecution = field(default_factory=StudyExecution)
    runners: dict[str, str] = field(default_factory=dict)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping; one :class:`ConfigError` for anything else (see
    :mod:`llem.config.safe_yaml`). The run limit also bounds the YAML values read, aliases expanded."""
    data = load_yaml_text(read_text(path), str(path), max(run_limit(), MIN_FILE_VALUES), RAISE_HINT)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


def is_study(data: Mapping[str, Any]) -> bool:
    """A file with ``sweep:`` or ``experiments:`` is a study; anything else is one experiment."""
    return "sweep" in data or "experiments" in data


def _check_top_level_keys(data: Mapping[str, Any], where: str) -> None:
    known = set(field_types(ExperimentConfig)) | set(STUDY_KEYS) | {path[0] for path in SECTION_ALIASES}
    for key in data:
        if key in known:
            continue
        if key in RENAMED_KEYS:
            raise ConfigError(f"{where}: '{key}' was renamed: use {RENAMED_KEYS[key]}")
        raise ConfigError(f"{where}: unknown key '{key}'{suggest(str(key), known)}")


def _execution(raw: Any, where: str) -> StudyExecution:
    if raw is None:
        return StudyExecution()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: study_execution must be a mapping, got {raw!r}")
    issues = check_mapping(StudyExecution, raw, "study_execution")
    if issues:
        raise ConfigError(f"{where}: {issues[0]}")
    execution = build(StudyExecution, raw)
    for name in ("n_cycles",):
        value = getattr(execution, name)
        if value is not None and value < 1:
            raise ConfigError(f"{where}: study_execution.{name} must be at least 1, got {value}")
    for name in TIMEOUT_FIELDS:
        value = getattr(execution, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{where}: study_execution.{name} must be above 0 (null: no limit), got {value}")
    for f in dataclasses.fields(StudyExecution):
        value = getattr(execution, f.name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"{where}: study_execution.{f.name} must not be negative, got {value}")
    return execution


def _check_engine(engine: Any, where: str) -> None:
    """``engine:`` is a name or a list of names (a multi-engine study)."""
    names = engine if isinstance(engine, list) else [engine]
    if engine is None or (names and all(isinstance(n, str) for n in names)):
        return
    raise ConfigError(
        f"{where}: engine: expected an engine name or a list of names ({', '.join(ENGINE_NAMES)}), got {engine!r}"
    )


# Characters a study name must not contain: path separators, and control characters (NUL included).
_UNSAFE_NAME_CHARS = re.compile(r"[/\\\x00-\x1f\x7f]")
MAX_NAME_BYTES = 200  # a study folder's name, leaving room under the usual 255-byte limit


def check_name(name: Any, where: str) -> str:
    """The study's name, which becomes one folder under the results folder: a single path component."""
    problem = None
    if not isinstance(name, str):
        problem = f"expected text, got {type(name).__name__} {name!r}"
    elif name.strip() in ("", ".", ".."):
        problem = f"{name!r} is not a folder name"
    elif _UNSAFE_NAME_CHARS.search(name):
        problem = f"{name!r} contains a path separator or a control character"
    elif len(name.encode("utf-8")) > MAX_NAME_BYTES:
        problem = f"longer than {MAX_NAME_BYTES} bytes"
    if problem:
        raise ConfigError(
            f"{where}: name: {problem}; the name is one folder name: no / or \\, no control characters, "
            f"not . or .., at most {MAX_NAME_BYTES} bytes"
        )
    return name


def load_base(base: Any, study_path: Path | None) -> dict[str, Any]:
    """The ``base:`` experiment file, relative to the study's folder, with study-only keys removed."""
    if not isinstance(base, str) or not base:
        raise ConfigError(f"base: expected a file path, got {base!r}")
    folder = study_path.parent if study_path else Path.cwd()
    path = (folder / base).expanduser()
    if not path.exists():
        raise ConfigError(f"base: {path} not found (the path is relative to the study file's folder)")
    data = read_yaml(path)
    return {k: v for k, v in data.items() if k not in STUDY_KEYS}


def parse_study(data: Mapping[str, Any], path: Path | None = None) -> StudySpec:
    """A :class:`StudySpec` from a study file's top-level mapping."""
    where = str(path) if path else "study"
    _check_top_level_keys(data, where)
    shared = {k: v for k, v in data.items() if k not in STUDY_KEYS}
    if "base" in data:
        shared = deep_merge(load_base(data["base"], path), shared)
    sweep = data.get("sweep") or {}
    if "sweep" in data and not isinstance(data["sweep"], Mapping):
        raise ConfigError(f"{where}: sweep must be a mapping of keys to value lists, got {data['sweep']!r}")
    if "sweep" in data and not sweep:
        raise ConfigError(f"{where}: sweep is empty: give at least one key with a list of values")
    experiments = data.get("experiments") or []
    if "experiments" in data and (not isinstance(data["experiments"], list) or not experiments):
        raise ConfigError(f"{where}: experiments must be a non-empty list of experiment mappings")
    for i, entry in enumerate(experiments):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: experiments[{i}] must be a mapping, got {entry!r}")
    runners = data.get("runners")
    runners = {} if runners is None else runners
    if not isinstance(runners, Mapping):
        raise ConfigError(f"{where}: runners must map engine names to local | docker | docker:<image>")
    runners = {ENGINE_ALIASES.get(str(k), str(k)): v for k, v in runners.items()}
    for engine, runner in runners.items():
        if engine not in ENGINE_NAMES:
            raise ConfigError(f"{where}: runners.{engine}: unknown engine{suggest(engine, ENGINE_NAMES)}")
        problem = runner_problem(runner)
        if problem:
            raise ConfigError(f"{where}: runners.{engine}: {problem}")
    _check_engine(shared.get("engine"), where)
    name = data.get("name", path.stem if path else "study")
    return StudySpec(
        path=path,
        name=check_name(name, where),
        shared=shared,
        sweep=dict(sweep),
        experiments=[dict(e) for e in experiments],
        execution=_execution(data.get("study_execution"), where),
        runners=runners,
    )
