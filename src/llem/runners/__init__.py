"""Runners: where a job's measurement runs, and which one each engine uses.

``process`` (the default; ``local`` is its other name) spawns a fresh worker process per job,
``inline`` measures in the task process (debugging, fast tests), ``docker`` / ``docker:<image>``
runs the worker in a container. Nothing here imports torch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llem.config.runners import TIMEOUT_FIELDS, runner_problem
from llem.config.schema import ExperimentConfig, RunnerConfig
from llem.errors import ConfigError
from llem.results.schema import RunResult

log = logging.getLogger("llem.runners")


@dataclass(frozen=True)
class RunnerChoice:
    """The runner of one job and where the choice came from."""

    kind: str  # process | inline | docker
    image: str | None  # docker only: the image named with docker:<image>, else None (engine default)
    source: str  # e.g. "$LLEM_RUNNER_VLLM", "runner.kind", "user config", "default"

    def describe(self) -> str:
        shown = f"docker:{self.image}" if self.image else self.kind
        return f"{shown} (from {self.source})"


def parse_runner(value: str, source: str) -> RunnerChoice:
    """``process``/``local``/``inline``/``docker``/``docker:<image>`` -> a :class:`RunnerChoice`."""
    problem = runner_problem(value)
    if problem:
        raise ConfigError(f"{source}: {problem}")
    if value.startswith("docker:"):
        return RunnerChoice("docker", value[len("docker:") :], source)
    return RunnerChoice("process" if value == "local" else value, None, source)


def check_settings(settings: RunnerConfig) -> None:
    """A :class:`ConfigError` for a ``runner.*`` value no worker could honour."""
    for name in TIMEOUT_FIELDS:
        value = getattr(settings, name)
        if value is not None and value <= 0:
            raise ConfigError(f"runner.{name}: must be above 0 seconds (null: no limit), got {value}")


def choose_runner(engine: str, explicit: str | None) -> RunnerChoice:
    """The runner for a job of ``engine``. Precedence: ``$LLEM_RUNNER_<ENGINE>``, then ``explicit``
    (``runner.kind``, which ``llem run`` fills from ``--runner`` or the file's ``runners:``), then the
    user config's ``runners:``, then ``process``."""
    from llem.user_config import load_user_config, user_config_path

    env_name = f"LLEM_RUNNER_{engine.upper()}"
    if os.environ.get(env_name):
        return parse_runner(os.environ[env_name], f"${env_name}")
    if explicit:
        return parse_runner(explicit, "runner.kind")
    configured = load_user_config().runners.get(engine)
    if configured:
        return parse_runner(configured, f"{user_config_path()} runners.{engine}")
    return RunnerChoice("process", None, "default")


def measure_job(
    experiment: ExperimentConfig,
    job_dir: Path,
    settings: RunnerConfig,
    choice: RunnerChoice,
    on_start: Callable[[int], None] | None = None,
    prior_warnings: list[str] | None = None,
) -> tuple[RunResult, dict[str, Any] | None]:
    """Measure ``experiment`` (already written to ``job_dir/experiment.json``) with the chosen runner.

    ``on_start`` gets the worker's pid when one starts; ``prior_warnings`` go into the result (a
    worker reads them from ``experiment.json``). Returns the result and the worker's exit facts
    (None inline); raises :class:`llem.errors.JobFailed` or another :class:`LlemError` when there
    is no result.
    """
    if choice.kind == "inline":
        limits = [n for n in TIMEOUT_FIELDS if getattr(settings, n)]
        if limits:
            log.warning("runner inline does not enforce %s: use runner.kind=process", ", ".join(limits))
        from llem.measure import measure

        return measure(experiment, job_dir, prior_warnings), None
    from llem.runners.outcome import read_outcome

    if choice.kind == "docker":
        from llem.runners.docker import run_docker

        exit = run_docker(job_dir, experiment, choice.image, settings, on_start)
    else:
        from llem.runners.process import run_process

        exit = run_process(job_dir, settings, on_start)
    return read_outcome(job_dir, exit)
