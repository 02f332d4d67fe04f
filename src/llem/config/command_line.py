"""The whole check of a ``python -m llem`` command line, before Hydra runs or writes anything.

Four steps, each a :class:`ConfigError` naming the key and the fix: Hydra's flags read as Hydra
reads them (:func:`check_flags`), the override pre-check (:func:`llem.config.overrides.precheck_cli`),
composition by Hydra's compose API (for a sweep, of its first job), and llem's own validation of the
composed job, the one every job gets in :func:`job_of`. The folders the run would write to must be
creatable and hold no earlier result; each job of a sweep writes its own.
"""

from __future__ import annotations

import argparse
import importlib.resources
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_module
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.types import Glob, Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from llem.config.fields import check_mapping
from llem.config.load import build, format_issues, load_experiment
from llem.config.overrides import (
    CONFIG_GROUPS,
    FREE_FORM_FIELDS,
    MULTIRUN_FLAGS,
    first_line,
    group_options,
    parse_overrides,
    precheck_cli,
    sweep_size,
)
from llem.config.schema import ExperimentConfig, RunnerConfig
from llem.errors import ConfigError
from llem.study.limits import DEFAULT_MAX_RUNS

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


def check_command_line(argv: list[str], max_jobs: int = DEFAULT_MAX_RUNS) -> Job | None:
    """Check ``python -m llem``'s arguments (a sweep may run up to ``max_jobs`` jobs); the validated
    job of a single run (None for a sweep, or when Hydra is only asked for help or another config)."""
    flags = check_flags(argv)
    if flags.shell_completion:  # its arguments are Hydra's subcommand, not overrides
        check_shell_completion(flags.overrides)
        return None
    problem = precheck_cli(argv, max_jobs)
    if problem:
        raise ConfigError(problem)
    if not runs_llem_config(argv):
        return None
    multirun = bool(MULTIRUN_FLAGS & set(argv))
    parsed = parse_overrides(argv)
    overrides = [first_job_override(o) for o in parsed]
    cfg = compose_job(overrides)
    job = None if multirun else job_of(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), overrides)
    if prints_config(argv):  # --cfg prints; it writes nothing
        check_package(cfg, flags.package)
        return job
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    raw = OmegaConf.to_container(OmegaConf.masked_copy(cfg, ["output_dir"]), resolve=False).get("output_dir")
    if "${hydra." in str(raw):  # the job reads Hydra's node through its resolver
        raise ConfigError(f"output_dir={raw}: write ${{hydra:job.num}}, not ${{hydra.job.num}}")
    try:
        folders = {key: OmegaConf.select(cfg, key), "output_dir": per_job_parent(raw) or cfg.get("output_dir")}
    except OmegaConfBaseException as err:
        raise ConfigError(hydra_message(err)) from err
    for name, folder in folders.items():
        if folder:
            check_folder(name, folder)
    if multirun:
        check_sweep_folders(cfg, raw, parsed)
    else:
        name, folder = ("output_dir", folders["output_dir"]) if folders["output_dir"] else (key, folders[key])
        check_no_result(name, folder)
    return job


# Hydra's commands: it runs one per command line.
_COMMANDS = {
    "run": "--run", "multirun": "-m", "cfg": "--cfg", "info": "--info", "shell_completion": "--shell-completion",
}  # fmt: skip
# Parts of an output_dir that differ between the jobs of a sweep.
_PER_JOB = ("${hydra:job.num}", "${hydra:job.override_dirname}", "${hydra:job.id}")


def check_flags(argv: list[str]) -> argparse.Namespace:
    """Hydra's flags read as Hydra reads them; a :class:`ConfigError` for an unknown flag, a bad
    flag value, two commands at once or a config that does not exist."""
    parser = get_args_parser()

    def refuse(message: str) -> None:
        unknown = message.removeprefix("unrecognized arguments: ").split() if "unrecognized" in message else []
        flags = [arg for arg in unknown if arg.startswith("-")]
        if flags:
            message = f"{flags[0]}: no such flag"
        elif unknown:  # argparse reads one run of overrides
            message = f"{unknown[0]}: give all overrides together, before or after the flags (-m, --cfg ...)"
        raise ConfigError(f"{message}; see python -m llem --help")

    parser.error = refuse  # type: ignore[method-assign]  # argparse would print its usage and exit
    args = parser.parse_args(argv)
    given = [flag for name, flag in _COMMANDS.items() if getattr(args, name) not in (None, False)]
    if len(given) > 1:
        raise ConfigError(
            f"{' and '.join(given)}: Hydra runs one of --run, -m, --cfg, --info and "
            "--shell-completion per command line; give them as separate commands"
        )
    if args.config_dir is not None and not os.path.isdir(args.config_dir):
        raise ConfigError(f"--config-dir {args.config_dir}: no such folder; give a folder of YAML configs")
    if args.config_name is not None and args.config_path is None:
        names = config_names(args.config_dir)
        if args.config_name.removesuffix(".yaml") not in names:
            raise ConfigError(f"--config-name {args.config_name}: no such config; choose one of {', '.join(names)}")
    return args


def check_shell_completion(arguments: list[str]) -> None:
    """``--shell-completion`` takes one of Hydra's subcommands: install=SHELL, uninstall=SHELL or query=SHELL."""
    subcommands = [a for a in arguments if a.split("=", 1)[0] in ("install", "uninstall", "query")]
    if len(subcommands) != 1 or len(arguments) != 1:
        raise ConfigError("--shell-completion: give one of install=bash, uninstall=bash or query=bash (or zsh, fish)")


def config_names(config_dir: str | None) -> list[str]:
    """The primary configs llem's package and ``config_dir`` offer (their YAML files' names)."""
    files = [p.name for p in (importlib.resources.files("llem.conf")).iterdir()]
    if config_dir is not None:
        files += os.listdir(config_dir)
    return sorted({f.removesuffix(".yaml") for f in files if f.endswith(".yaml")})


def check_package(cfg: DictConfig, package: str | None) -> None:
    """``--package P`` with ``--cfg``: P must be a section of the printed config."""
    if package in (None, "", "_global_"):
        return
    if OmegaConf.select(cfg, package, default=None, throw_on_missing=False) is None:
        sections = ", ".join(str(k) for k in cfg)
        raise ConfigError(f"--package {package}: no such section in the config; choose one of {sections}")


def check_no_result(key: str, folder: Any) -> None:
    """A :class:`ConfigError` when ``folder`` already holds a job's ``result.json``."""
    if (Path(str(folder)) / "result.json").exists():
        raise ConfigError(
            f"{key}={folder}: holds the result of an earlier run (result.json); choose another folder or remove it"
        )


def per_job_parent(raw_output_dir: Any) -> str | None:
    """The fixed folder above an ``output_dir`` that names each job's folder (``runs/${hydra.job.num}``
    gives ``runs``), else None; the job's own part is known only when the job runs."""
    text = str(raw_output_dir)
    if raw_output_dir is None or not any(part in text for part in _PER_JOB):
        return None
    return os.path.dirname(text.split("${", 1)[0]) or "."


def check_sweep_folders(cfg: DictConfig, raw: Any, overrides: list[Override]) -> None:
    """Each job of a sweep writes its own folder: a fixed ``output_dir`` (``raw``, unresolved) is
    refused, and so is a sweep folder whose job folders hold results already."""
    if raw is not None and not any(part in str(raw) for part in _PER_JOB):
        jobs = math.prod(sweep_size(o) for o in overrides)
        dirs = math.prod(sweep_size(o) for o in overrides if o.key_or_group == "output_dir")
        if dirs < jobs:
            raise ConfigError(
                f"output_dir={raw}: every job of the sweep would write there; leave output_dir unset under -m "
                "(jobs go to hydra.sweep.dir/<n>) or make it differ per job, e.g. output_dir=DIR/${hydra:job.num}"
            )
    sweep_dir = Path(str(OmegaConf.select(cfg, "hydra.sweep.dir")))
    earlier = next(iter(sorted(sweep_dir.glob("*/result.json"))), None) if sweep_dir.is_dir() else None
    if raw is None and earlier is not None:
        raise ConfigError(
            f"hydra.sweep.dir={sweep_dir}: holds the results of an earlier sweep ({earlier.parent.name}/result.json); "
            "choose another folder or remove them"
        )


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
        raise ConfigError(composition_message(err)) from err


def composition_message(err: BaseException) -> str:
    """Why composition failed, in llem's words where Hydra's name only the override."""
    message = first_line(err)
    cause = err.__cause__
    if message.startswith("Error merging override ") and cause is not None:
        line = message.removeprefix("Error merging override ")
        detail = hydra_message(cause)
        if "is incompatible with (str)" in detail and line.lstrip("+").split("=", 1)[0] in FREE_FORM_FIELDS:
            key = line.lstrip("+").split("=", 1)[0]
            return f"{line}: a key that reads as a number must be set one per override, e.g. +{key}.0=20GiB"
        return f"{line}: {detail}"
    if message.startswith("Could not override '"):
        key = message.split("'")[1]
        return f"{key}: no such key to override; write ++{key}=... to add it"
    return hydra_message(err)


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
