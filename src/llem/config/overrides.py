"""Checks command-line overrides before Hydra composes anything.

Hydra would reject an unknown key or a bad enum value too, but with exit code 1 and without
suggesting the intended key. Here every override (each value of a sweep included) is checked
against the schema, and a typo gets "did you mean ...". Anything these checks do not cover is
left to Hydra.
"""

from __future__ import annotations

import functools
import importlib.resources

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from llem.config.fields import check_path_value, suggest
from llem.config.schema import JobConfig

# Hydra flags that take a value (the value is not an override).
_FLAGS_WITH_VALUE = {
    "--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
    "--config-dir", "-cd", "--experimental-rerun",
}  # fmt: skip
_INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}

# Config groups of llem's conf/ (group name -> options are the YAML files inside).
CONFIG_GROUPS = ("engine", "dataset", "decoder", "profile")


@functools.cache
def group_options(group: str) -> tuple[str, ...]:
    """The option names of a config group, from the packaged conf folder."""
    folder = importlib.resources.files("llem.conf") / group
    return tuple(sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")))


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


def precheck_cli(argv: list[str]) -> str | None:
    """The first problem with the command line's overrides, or None when they look valid."""
    try:
        overrides = OverridesParser.create().parse_overrides(override_args(argv))
    except HydraException:
        return None  # a syntax error: Hydra's own message shows where it is
    for override in overrides:
        key = override.key_or_group
        if override.is_delete() or key.startswith("hydra"):
            continue
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        check = _check_group_choice if key in CONFIG_GROUPS else _check_field
        problem = check(key, values)
        if problem:
            return problem
    return None


def _check_group_choice(group: str, values: list[object]) -> str | None:
    options = group_options(group)
    for value in values:
        if value is not None and str(value) not in options:
            hint = suggest(str(value), options)
            return f"{group}={value}: no such option{hint}; choose one of {', '.join(options)}"
    return None


def _check_field(key: str, values: list[object]) -> str | None:
    for value in values:
        issues = check_path_value(key, value, JobConfig)
        if issues:
            return str(issues[0])
    return None
