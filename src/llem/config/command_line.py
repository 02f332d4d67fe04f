"""The whole check of a ``python -m llem`` command line, before Hydra runs or writes anything.

Three steps, each a :class:`ConfigError` naming the key and the fix: the override pre-check
(:func:`llem.config.overrides.precheck_cli`), composition by Hydra's compose API (for a sweep, of
its first job), and llem's own validation of the composed job, the one every job gets in
:func:`job_of`. The folders the run would write to must be creatable.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_module
from hydra.core.override_parser.types import Glob, Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from llem.config.fields import check_mapping
from llem.config.load import build, format_issues, load_experiment
from llem.config.overrides import (
    CONFIG_GROUPS,
    MAX_SWEEP_JOBS,
    MULTIRUN_FLAGS,
    first_line,
    group_options,
    parse_overrides,
    precheck_cli,
)
from llem.config.schema import ExperimentConfig, RunnerConfig
from llem.errors import ConfigError

# Flags after which Hydra runs no job of llem's primary config (help, info, another config).
_NO_JOB_FLAGS = {
    "--help", "-h", "--hydra-help", "--version", "--info", "-i", "--shell-completion", "-sc",
    "--config-path", "-cp", "--config-dir", "-cd", "--experimental-rerun",
}  # fmt: skip
_CONFIG_NAME_FLAGS = ("--config-name", "-cn")
# Lines of OmegaConf's messages that locate a problem already named in the first lines.
_DETAIL_PREFIXES = ("full_key:", "object_type=", "reference_type=", "Set the environment variable")


@dataclass
class Job:
    """One composed job, validated: what is measured, how it runs, and its place in a study."""

    experiment: ExperimentConfig
    settings: RunnerConfig
    study_run: dict[str, Any] | None


def job_of(cfg: DictConfig, task_overrides: list[str]) -> Job:
    """The validated job of a Hydra-composed config; a :class:`ConfigError` listing every issue.

    ``task_overrides`` are the job's overrides: decoder fields set there win over a decoder preset.
    """
    from llem.runners import check_settings  # the runner's own limits

    try:
        data = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    except OmegaConfBaseException as err:
        raise ConfigError(hydra_message(err)) from err
    assert isinstance(data, dict)
    study_run = data.pop("study_run", None)
    runner = data.pop("runner")
    issues = check_mapping(RunnerConfig, runner, "runner")
    if issues:
        raise ConfigError(format_issues(issues))
    settings = build(RunnerConfig, runner)
    check_settings(settings)
    explicit = decoder_keys_set(task_overrides)
    experiment = load_experiment(data, explicit_decoder_keys=explicit or None)
    return Job(experiment, settings, study_run)


def decoder_keys_set(task_overrides: list[str]) -> set[str]:
    """Decoder fields the overrides set explicitly (they win over a decoder preset)."""
    keys = set()
    for item in task_overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key.startswith("decoder."):
            keys.add(key.split(".", 1)[1])
    return keys


def check_command_line(argv: list[str], max_jobs: int = MAX_SWEEP_JOBS) -> Job | None:
    """Check ``python -m llem``'s arguments (a sweep may run up to ``max_jobs`` jobs); the validated
    job of a single run (None for a sweep, or when Hydra is only asked for help or another config)."""
    problem = precheck_cli(argv, max_jobs)
    if problem:
        raise ConfigError(problem)
    if not runs_llem_config(argv):
        return None
    multirun = bool(MULTIRUN_FLAGS & set(argv))
    overrides = [first_job_override(o) for o in parse_overrides(argv)]
    cfg = compose_job(overrides)
    job = None if multirun else job_of(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), overrides)
    if not prints_config(argv):  # --cfg prints; it writes nothing
        key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
        try:
            folders = {key: OmegaConf.select(cfg, key), "output_dir": cfg.get("output_dir")}
        except OmegaConfBaseException as err:
            raise ConfigError(hydra_message(err)) from err
        for name, folder in folders.items():
            if folder:
                check_folder(name, folder)
    return job


def prints_config(argv: list[str]) -> bool:
    """Whether Hydra is asked to print the config (``--cfg``) rather than to run it."""
    return bool({"--cfg", "-c"} & {a.split("=", 1)[0] for a in argv})


def runs_llem_config(argv: list[str]) -> bool:
    """Whether Hydra would compose llem's primary config for a job (not help, info, another config)."""
    names = [a.split("=", 1)[0] for a in argv]
    if _NO_JOB_FLAGS & set(names):
        return False
    for i, name in enumerate(names):
        if name in _CONFIG_NAME_FLAGS:
            value = argv[i].split("=", 1)[1] if "=" in argv[i] else (argv[i + 1] if i + 1 < len(argv) else "")
            if value != "config":
                return False
    return True


def first_job_override(override: Override) -> str:
    """The override as its sweep's first job sees it (the line itself when it sweeps nothing)."""
    group = override.key_or_group
    if not override.is_sweep_override() or (isinstance(override.value(), Glob) and group not in CONFIG_GROUPS):
        return override.input_line or ""  # Hydra's own groups: composition says what is wrong
    if isinstance(override.value(), Glob):
        first = override.value().filter(list(group_options(group)))[0:1]
        value = first[0] if first else ""
    else:
        value = next(override.sweep_string_iterator(), "")  # a counted sweep: at most max_jobs values
    return f"{override.get_key_element()}={value}"


def compose_job(overrides: list[str]) -> DictConfig:
    """llem's primary config composed with ``overrides`` (its ``hydra`` node included)."""
    from llem.config.store import register_configs

    register_configs()
    try:
        with initialize_config_module(config_module="llem.conf", version_base="1.3", job_name="llem"):
            return compose("config", overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        raise ConfigError(hydra_message(err)) from err


def hydra_message(err: BaseException) -> str:
    """Hydra's or OmegaConf's message on one line, without the lines that only locate it."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(_DETAIL_PREFIXES)]
    key = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("full_key:")), "")
    message = " ".join(line if line.endswith((".", ":", ";")) else line + ";" for line in kept).rstrip(";")
    message = message or first_line(err)
    return f"{key}: {message}" if key and key not in message else message


def check_folder(key: str, folder: Any) -> None:
    """A :class:`ConfigError` when ``folder`` cannot be created and written (nothing is left behind)."""
    path = Path(os.path.abspath(str(folder)))
    too_long = [part for part in path.parts if len(os.fsencode(part)) > 255]
    if too_long:
        raise ConfigError(f"{key}={folder}: the name {too_long[0][:40]}... is longer than 255 bytes")
    existing = path
    try:
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigError(f"{key}={folder}: {existing} is a file, not a folder; choose another folder")
        os.rmdir(tempfile.mkdtemp(prefix=".llem-probe-", dir=existing))
    except OSError as err:
        reason = err.strerror or str(err)
        raise ConfigError(f"{key}={folder}: cannot create folders in {existing} ({reason}); choose another") from err
