"""The optional per-user config file and the environment variables that override it.

``<platformdirs user config dir>/llenergymeasure/config.yaml`` (``$LLEM_USER_CONFIG`` points
elsewhere). Every key is optional; an unknown key or a wrong type is a clear error naming the key
and the file. :func:`effective_settings` says where each value came from, for ``llem config``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional, get_args, get_type_hints

import platformdirs

from llem.config.engines import ENGINE_NAMES
from llem.config.fields import ConfigIssue, check_mapping, suggest
from llem.config.load import build
from llem.config.runners import runner_problem
from llem.config.safe_yaml import load_yaml_text, read_text
from llem.errors import ConfigError

# Values a user config may hold (it has a few dozen settings): bounds what an alias fan-out can expand to.
USER_CONFIG_MAX_VALUES = 10_000
# Environment variables that override a value of the file: env name -> dotted key.
ENV_OVERRIDES = {
    "LLEM_CARBON_INTENSITY": "measurement.carbon_intensity_gco2_kwh",
    "LLEM_DATACENTER_PUE": "measurement.datacenter_pue",
    "LLEM_POWERCAP_ROOT": "measurement.powercap_root",
    "LLEM_MAX_RUNS": "execution.max_runs",
}


@dataclass
class OutputSettings:
    # parent folder of study folders and single runs; None = ./outputs
    results_dir: Optional[str] = None
    # Hugging Face model cache mounted into containers; None = the HF_HOME / hub default
    model_cache_dir: Optional[str] = None


@dataclass
class MeasurementSettings:
    # power usage effectiveness of the data centre (>= 1.0) applied to carbon figures
    datacenter_pue: Optional[float] = None
    # grid carbon intensity, gCO2e per kWh; None = no carbon figure
    carbon_intensity_gco2_kwh: Optional[float] = None
    # ISO 3166 alpha-3 country code, recorded with the carbon figure (and given to codecarbon)
    datacenter_location: Optional[str] = None
    # root of the Linux powercap tree read by the rapl sampler
    powercap_root: str = "/sys/class/powercap"


@dataclass
class ExecutionSettings:
    # default pause between experiments of a study, seconds
    experiment_gap_seconds: Optional[float] = None
    # default pause between cycles of a study, seconds
    cycle_gap_seconds: Optional[float] = None
    # most runs (experiments x cycles) one study may plan; None = 100,000
    max_runs: Optional[int] = None


@dataclass
class UserConfig:
    output: OutputSettings = field(default_factory=OutputSettings)
    # engine -> local | process | inline | docker | docker:<image>
    runners: dict[str, str] = field(default_factory=dict)
    # engine -> container image used by a plain `docker` runner
    images: dict[str, str] = field(default_factory=dict)
    measurement: MeasurementSettings = field(default_factory=MeasurementSettings)
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)


def user_config_path() -> Path:
    """``$LLEM_USER_CONFIG``, else ``<user config dir>/llenergymeasure/config.yaml``."""
    override = os.environ.get("LLEM_USER_CONFIG")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir()) / "llenergymeasure" / "config.yaml"


def _read_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data = load_yaml_text(read_text(path), f"{path} (the user config)", USER_CONFIG_MAX_VALUES)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the user config must be a mapping of sections (output, runners, ...)")
    issues = check_mapping(UserConfig, data)
    for section in ("runners", "images"):
        for engine, value in (data.get(section) or {}).items() if isinstance(data.get(section), dict) else ():
            if engine not in ENGINE_NAMES:
                hint = suggest(str(engine), ENGINE_NAMES)
                issues.append(
                    ConfigIssue(f"{section}.{engine}", f"unknown engine{hint}; use one of {', '.join(ENGINE_NAMES)}")
                )
            elif section == "runners":
                problem = runner_problem(value)
                if problem:
                    issues.append(ConfigIssue(f"runners.{engine}", problem))
    if issues:
        listed = "\n".join(f"  - {issue}" for issue in issues)
        raise ConfigError(f"{path}: invalid user config:\n{listed}")
    return data


def _env_value(name: str) -> int | float | str | None:
    """The value of ``$name`` as its key's type (text, whole number or finite number), or None when unset."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    section, leaf = ENV_OVERRIDES[name].split(".")
    hint = get_type_hints(get_type_hints(UserConfig)[section])[leaf]
    kinds = get_args(hint) or (hint,)  # Optional[int] -> (int, NoneType)
    if str in kinds:
        return raw
    if int in kinds:
        try:
            return int(raw)
        except ValueError as err:
            raise ConfigError(f"${name}={raw!r}: expected a whole number") from err
    try:
        value = float(raw)
    except ValueError as err:
        raise ConfigError(f"${name}={raw!r}: expected a number") from err
    if not math.isfinite(value):
        raise ConfigError(f"${name}={raw!r}: expected a finite number")
    return value


def _load() -> tuple[UserConfig, dict[str, str]]:
    """The config and the source of every value set by the file or the environment."""
    path = user_config_path()
    data = _read_file(path)
    sources = {key: str(path) for key in _dotted_keys(data)}
    for name, key in ENV_OVERRIDES.items():
        value = _env_value(name)
        if value is None:
            continue
        section, leaf = key.split(".")
        data.setdefault(section, {})[leaf] = value
        sources[key] = f"${name}"
    return build(UserConfig, data), sources


def _dotted_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        out += _dotted_keys(value, path + ".") if isinstance(value, dict) else [path]
    return out


def load_user_config() -> UserConfig:
    """The user config with environment overrides applied."""
    return _load()[0]


def results_dir() -> Path:
    """Parent folder of results: the user config's ``output.results_dir``, else ``outputs``."""
    return Path(load_user_config().output.results_dir or "outputs").expanduser()


def effective_settings() -> list[tuple[str, Any, str]]:
    """``(dotted key, value, source)`` of every setting: the file, an environment variable, or default."""
    cfg, sources = _load()
    rows: list[tuple[str, Any, str]] = []
    for section in fields(UserConfig):
        value = getattr(cfg, section.name)
        if is_dataclass(value):
            for leaf in fields(value):
                key = f"{section.name}.{leaf.name}"
                rows.append((key, getattr(value, leaf.name), sources.get(key, "default")))
        else:
            for engine, item in (value or {}).items():
                key = f"{section.name}.{engine}"
                rows.append((key, item, sources.get(key, "default")))
    for engine in ENGINE_NAMES:
        name = f"LLEM_RUNNER_{engine.upper()}"
        if os.environ.get(name):
            rows.append((f"runners.{engine}", os.environ[name], f"${name}"))
    return rows
