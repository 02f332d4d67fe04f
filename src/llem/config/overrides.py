"""Checks command-line overrides before Hydra composes anything.

Hydra would reject an unknown key or a bad enum value too, but with exit code 1 and without
suggesting the intended key; some lines (a field of an engine section that is not selected, a
group set to null) end in a traceback, and a huge ``range()`` sweep is enumerated before the first
job runs. Here every override is checked against the schema (each value of a sweep included), a
typo gets "did you mean ...", and sweeps are counted, never enumerated. What these checks do not
cover is left to composition (:mod:`llem.config.command_line`).
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from collections.abc import Mapping
from typing import Any

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Glob, IntervalSweep, Override, RangeSweep, Sweep, ValueType
from hydra.errors import HydraException

from llem.config.fields import ConfigIssue, check_path_value, field_type_at, suggest
from llem.config.schema import Engine, JobConfig
from llem.errors import ConfigError
from llem.study.encode import FREE_FORM_FIELDS, encode_mapping
from llem.study.limits import DEFAULT_MAX_RUNS

# Hydra flags that take a value (the value is not an override).
_FLAGS_WITH_VALUE = {
    "--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
    "--config-dir", "-cd", "--experimental-rerun",
}  # fmt: skip
_INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
MULTIRUN_FLAGS = {"-m", "--multirun"}

# Config groups of llem's conf/ (group name -> options are the YAML files inside).
CONFIG_GROUPS = ("engine", "dataset", "decoder", "profile")
ENGINE_SECTIONS = tuple(e.value for e in Engine)


@functools.cache
def group_options(group: str) -> tuple[str, ...]:
    """The option names of a config group, from the packaged conf folder."""
    folder = importlib.resources.files("llem.conf") / group
    return tuple(sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")))


@functools.cache
def group_defaults() -> dict[str, str | None]:
    """Each group's option in the primary config's defaults list (None: the group is off by default)."""
    text = (importlib.resources.files("llem.conf") / "config.yaml").read_text(encoding="utf-8")
    out: dict[str, str | None] = {}
    for item in yaml.safe_load(text)["defaults"]:
        if isinstance(item, dict):
            out.update((k, v) for k, v in item.items() if k in CONFIG_GROUPS)
    return out


def override_args(argv: list[str]) -> list[str]:
    """The overrides among Hydra's command-line arguments (flags and their values removed)."""
    out: list[str] = []
    skip_next = False
    for i, arg in enumerate(argv):
        if skip_next:
            skip_next = False
            continue
        if arg.startswith("-") and not arg.startswith("~"):
            name = arg.split("=", 1)[0]
            has_inline_value = "=" in arg
            if name in _FLAGS_WITH_VALUE and not has_inline_value:
                skip_next = True
            elif name in ("--info", "-i") and not has_inline_value and i + 1 < len(argv):
                skip_next = argv[i + 1] in _INFO_TOPICS
            continue
        out.append(arg)
    return out


def parse_overrides(argv: list[str]) -> list[Override]:
    """The command line's overrides, parsed by Hydra's own parser; a :class:`ValueError` naming the
    line when it is not Hydra's syntax."""
    try:
        return OverridesParser.create().parse_overrides(override_args(argv))
    except HydraException as err:
        raise ValueError(f"cannot read the command line: {first_line(err)}") from err


def free_form_spelling(argv: list[str]) -> list[str]:
    """``argv`` with each plain ``path={...}`` of a free-form mapping (``passthrough_kwargs``,
    ``transformers.max_memory``, ...) written as Hydra can merge it: ``++path={...}``, plus one
    ``++path.key=value`` per key its dict syntax reads as another type (the ``0`` of ``{0:20GiB}``).
    Schema fields cannot take new keys from a plain override; other arguments stay as they are."""
    out: list[str] = []
    for arg in argv:
        out += _free_form_overrides(arg)
    return out


def _free_form_overrides(arg: str) -> list[str]:
    key = arg.split("=", 1)[0]
    if arg.startswith(("-", "+", "~")) or "=" not in arg:
        return [arg]
    if any(key.startswith(f"{field}.") for field in FREE_FORM_FIELDS):
        return ["++" + arg]  # a key of its own inside a free-form mapping: added or replaced
    if key not in FREE_FORM_FIELDS:
        return [arg]
    try:
        override = OverridesParser.create().parse_override(arg)
    except HydraException:
        return [arg]  # the pre-check names the syntax error
    value = override.value()
    if isinstance(value, ChoiceSweep) and all(isinstance(v, dict) for v in value.list):
        return ["++" + arg]  # a sweep of mappings: each value is merged whole
    if not isinstance(value, dict) or "${" in repr(value):
        return [arg]  # not a mapping, or interpolations, which re-encoding would quote
    try:
        return encode_mapping(override.key_or_group, {str(k): v for k, v in value.items()})
    except ConfigError:
        return [arg]


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (Hydra's run to several)."""
    return next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)


def precheck_cli(argv: list[str], max_jobs: int = DEFAULT_MAX_RUNS) -> str | None:
    """The first problem with the command line's overrides, or None when they look valid; a sweep
    of more than ``max_jobs`` jobs is one."""
    try:
        overrides = parse_overrides(argv)
    except ValueError as err:
        return str(err)
    multirun = bool(MULTIRUN_FLAGS & set(argv))
    engines = selected_options(overrides, "engine")
    jobs = 1
    for override in overrides:
        problem = _check_override(override, engines, multirun)
        if problem:
            return problem
        jobs *= sweep_size(override)
    problem = _unset_required(overrides)
    if problem:
        return problem
    if jobs > max_jobs:
        return (
            f"the sweep has {jobs:,} jobs, above the limit of {max_jobs:,}: split it, or raise the limit "
            "with $LLEM_MAX_RUNS or execution.max_runs in the user config"
        )
    return None


@functools.cache
def required_keys(group: str, option: str) -> tuple[str, ...]:
    """The keys a group option leaves for the command line (``???`` in its YAML), dotted from the root."""
    text = (importlib.resources.files("llem.conf") / group / f"{option}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    return tuple(f"{group}.{key}" for key, value in data.items() if value == "???")


def _unset_required(overrides: list[Override]) -> str | None:
    """A selected group option whose required key the command line does not set (Hydra would keep
    the schema's default instead: ``dataset=jsonl`` alone would measure the built-in prompts)."""
    given = {o.key_or_group for o in overrides if not o.is_delete()}
    for group in CONFIG_GROUPS:
        for option in selected_options(overrides, group):
            if option is None or option not in group_options(group):
                continue
            missing = [key for key in required_keys(group, option) if key not in given]
            if missing:
                return f"{group}={option}: set {missing[0]}=... as well (this option leaves it to the command line)"
    return None


def selected_options(overrides: list[Override], group: str) -> list[str | None]:
    """The options of ``group`` the command line selects (all values of a sweep; the last override
    of the group wins, as in Hydra), else its default."""
    for override in reversed(overrides):
        if override.key_or_group == group and override.package is None and not override.is_delete():
            return [None if v is None else str(v) for v in _values(override, group_options(group))]
    return [group_defaults().get(group)]


def _values(override: Override, options: tuple[str, ...] = ()) -> list[Any]:
    """The values of a choice sweep, a glob over ``options`` or a single value; none for a range or
    an interval (their values are never listed)."""
    value = override.value()
    if isinstance(value, Glob):
        return list(value.filter(list(options)))
    if isinstance(value, ChoiceSweep):
        return list(value.list)
    if isinstance(value, (RangeSweep, IntervalSweep)):
        return []
    return [value]


def sweep_size(override: Override) -> int:
    """How many values an override sweeps (1 for a single value), counted without enumerating."""
    value = override.value()
    if isinstance(value, RangeSweep):
        return range_size(value)
    if isinstance(value, Glob):
        group = override.key_or_group
        return len(_values(override, group_options(group) if group in CONFIG_GROUPS else ()))
    if isinstance(value, ChoiceSweep):
        return len(value.list)
    return 1


def range_size(sweep: RangeSweep) -> int:
    """Values of Hydra's ``range(start, stop, step)``; raises ValueError for a range with no end."""
    start, stop, step = sweep.start, sweep.stop, sweep.step
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (start, stop, step)) or step == 0:
        raise ValueError("start, stop and step must be finite numbers and step must not be 0")
    if all(isinstance(v, int) for v in (start, stop, step)):
        return len(range(start, stop, step))  # type: ignore[arg-type]
    return max(0, math.ceil((stop - start) / step))  # type: ignore[operator]


def _check_override(override: Override, engines: list[str | None], multirun: bool) -> str | None:
    key = override.key_or_group
    line = override.input_line or key
    if key == "":
        return f"{line}: no key before '='"
    if override.is_delete():
        if override.is_sweep_override():
            return f"{line}: a deletion (~key) takes at most one value, the one it removes"
        return None if key.startswith("hydra") else _check_deletion(key, line)
    if override.value_type is ValueType.INTERVAL_SWEEP:
        return (
            f"{line}: interval() is sampled by optimising sweepers (e.g. Optuna), which llem does not use; "
            f"list the values ({key}=a,b,c) or use range(start,stop,step) with -m"
        )
    if isinstance(override.value(), Glob) and key not in CONFIG_GROUPS:
        return f"{line}: glob() selects options of a config group ({', '.join(CONFIG_GROUPS)}); list the values"
    if override.is_sweep_override() and not multirun:
        return f"{line}: several values make a sweep: add -m to run one job per value"
    if isinstance(override.value(), RangeSweep):
        try:
            if range_size(override.value()) == 0:
                return f"{line}: the range has no values"
        except ValueError as err:
            return f"{line}: {err}"
        values: list[Any] = [override.value().start]  # a range's values share their type: check one
    else:
        values = _values(override, group_options(key) if key in CONFIG_GROUPS else ())
    if "/" in key and not all(isinstance(v, str) or _strings(v) for v in values):
        return f"{line}: a config group takes an option name (or a list of names)"
    if key.startswith("hydra"):
        return None  # Hydra's own settings: composition checks their values
    if any(_holds_sweep(v) for v in values):
        return f"{line}: a sweep cannot sit inside a list or mapping; sweep the whole value ({key}=a,b)"
    if key in CONFIG_GROUPS and override.package is None:
        return _check_group_choice(key, values)
    if key.split(".")[0] == "study_run":
        return f"{line}: study_run is filled by `llem run` for the jobs of a study, not on the command line"
    return _check_field(key, values) or _check_engine_section(key, values, engines)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _holds_sweep(value: Any) -> bool:
    if isinstance(value, Sweep):
        return True
    if isinstance(value, Mapping):
        return any(_holds_sweep(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_sweep(v) for v in value)
    return False


def _check_deletion(key: str, line: str) -> str | None:
    if key in CONFIG_GROUPS:
        return _check_group_choice(key, [None], deleting=True)
    try:
        field_type_at(key, JobConfig)
    except KeyError as err:
        return str(err.args[0])
    if any(key.startswith(f"{m}.") for m in FREE_FORM_FIELDS):
        return None  # a key of a free-form mapping may be removed
    return f"{line}: llem's fields cannot be removed; set {key}=null (where optional) or another value"


def _check_group_choice(group: str, values: list[Any], deleting: bool = False) -> str | None:
    options = group_options(group)
    for value in values:
        if value is None:
            shown = f"~{group}" if deleting else f"{group}=null"
            if group_defaults().get(group) is None:
                if deleting:
                    continue  # ~decoder, ~profile: the group's own default
                choices = ", ".join(options)
                return f"{shown}: a config group takes no null; leave {group} unset, or choose one of {choices}"
            return f"{shown}: {group} cannot be left out; choose one of {', '.join(options)}"
        if str(value) not in options:
            hint = suggest(str(value), options)
            return f"{group}={value}: no such option{hint}; choose one of {', '.join(options)}"
    return None


def _check_field(key: str, values: list[Any]) -> str | None:
    for value in values:
        issues: list[ConfigIssue] = check_path_value(key, value, JobConfig)
        if issues:
            return str(issues[0])
    return None


def _check_engine_section(key: str, values: list[Any], engines: list[str | None]) -> str | None:
    """A field of an engine section is only there when that engine is selected."""
    section = key.split(".")[0]
    if section not in ENGINE_SECTIONS or (key == section and all(v is None for v in values)):
        return None  # `vllm=null` leaves the section as it is when another engine is selected
    others = sorted({str(e) for e in engines if e != section})
    if not others:
        return None
    if len(engines) == 1:
        fix = f"add engine={section}" if engines == [group_defaults()["engine"]] else f"set engine={section}"
        return f"{key}: the {section} section is used with engine={section}; {fix}"
    return (
        f"{key}: the {section} section is used with engine={section}, but this sweep also runs "
        f"engine={','.join(others)}; measure each engine's settings with its own sweep, or with a study file"
    )
