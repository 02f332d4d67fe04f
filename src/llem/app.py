"""The measurement task app: Hydra composes one experiment per job, this module measures it.

``python -m llem [overrides] [-m]`` enters here. Each job writes, in its own output folder,
``experiment.json`` (resolved config and hash), ``status.json``, ``result.json`` and ``llem.log``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from llem.config.command_line import check_command_line, hydra_message, job_of, prints_config
from llem.config.load import config_hash, to_dict
from llem.config.overrides import MULTIRUN_FLAGS, free_form_spelling, override_args, parse_overrides, sweep_size
from llem.config.store import register_configs
from llem.engines import gpu_count
from llem.errors import JobFailed, LlemError
from llem.preflight import check_job
from llem.results.headline import headline
from llem.results.io import write_json_atomic
from llem.runners import choose_runner, measure_job
from llem.runners.isolation import check_devices
from llem.study.limits import run_limit
from llem.study.submitit_jobs import selects_slurm
from llem.user_config import load_user_config

log = logging.getLogger("llem")

# (config hash, runner kind) of the job ``main`` checked before Hydra started: not checked again in the job.
_checked_before_hydra: set[tuple[str, str]] = set()

register_configs()


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class JobStatus:
    """``status.json`` of one job, rewritten atomically at each change."""

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / "status.json"
        self.data: dict[str, Any] = {"status": "running", "started_at": utc_now(), "pid": None}

    def write(self, **fields: Any) -> None:
        self.data.update(fields)
        write_json_atomic(self.path, self.data)


def run_job(cfg: DictConfig) -> dict[str, Any] | None:
    """Validate, record and measure one composed experiment; returns the headline metrics."""
    hc = HydraConfig.get()
    output_dir = Path(cfg.get("output_dir") or hc.runtime.output_dir)
    status = JobStatus(output_dir)
    if (output_dir / "result.json").exists():  # another job's result: kept, never overwritten
        message = f"{output_dir}: holds the result of an earlier run (result.json); choose another folder or remove it"
        if hc.mode == RunMode.MULTIRUN:
            log.error(message)
            _record_refusal(Path(hc.runtime.output_dir), message)
            return None
        print(f"llem: {message}", file=sys.stderr)
        sys.exit(2)
    try:
        status.write(pid=os.getpid())
    except OSError as err:  # nothing can be recorded in a folder that cannot be written
        message = f"{output_dir}: cannot write the job's files there ({err.strerror or err})"
        if hc.mode == RunMode.MULTIRUN:
            log.error(message)
            return None
        print(f"llem: {message}", file=sys.stderr)
        sys.exit(2)
    try:
        job = job_of(cfg, list(hc.overrides.task))
        experiment, settings, study_run = job.experiment, job.settings, job.study_run
        if study_run:  # a study job's place in its study
            status.write(study_run=study_run)
        runner = choose_runner(experiment.engine.value, settings.kind)
        status.write(runner=runner.describe())
        if not study_run:  # a study names its run itself (study i/N)
            log.info("%s: %s", _job_title(hc), " ".join(hc.overrides.task) or "the default configuration")
        if (config_hash(experiment), runner.kind) not in _checked_before_hydra:
            check_job(experiment, runner.kind, in_study=bool(study_run))  # found now, not after the model loads
        isolation = check_devices(settings.device_isolation, gpu_limit=gpu_count(experiment))
        for line in isolation.warnings():
            log.warning("device isolation: %s", line)
        write_json_atomic(
            output_dir / "experiment.json",
            {
                "config_hash": config_hash(experiment),
                "config": to_dict(experiment),
                "overrides": list(hc.overrides.task),
                "choices": {k: v for k, v in hc.runtime.choices.items() if not k.startswith("hydra")},
                "study_run": study_run,
                "runner": {**to_dict(settings), "kind": runner.kind, "image": runner.image, "source": runner.source},
                "device_isolation": isolation.record(),
            },
        )
        result, worker = measure_job(
            experiment,
            output_dir,
            settings,
            runner,
            on_start=lambda pid: status.write(worker={"pid": pid}),
            prior_warnings=isolation.warnings(),
        )
    except KeyboardInterrupt:
        status.write(status="interrupted", finished_at=utc_now(), exit_reason="interrupted (Ctrl-C)")
        raise
    except Exception as err:  # recorded for the user; never lost in a sweep
        fields = _failure(err)
        status.write(status="failed", finished_at=utc_now(), **fields)
        log.error("%s: %s", fields["error_type"], err)
        if hc.mode == RunMode.MULTIRUN:
            return None  # the sweep goes on; the sweep report exits non-zero at the end
        if fields["traceback"]:
            log.error("the traceback is in %s", status.path)
        sys.exit(getattr(err, "exit_code", 1))
    status.write(status="completed", finished_at=utc_now(), exit_reason="completed", worker=worker)
    log.info(
        "done: %d output tokens in %.2f s = %.1f tokens/s; TTFT p50 %s; results in %s",
        result.tokens.output_tokens,
        result.inference_time_s,
        result.throughput.output_tokens_per_s,
        _ms(result.latency.ttft.p50_s),
        output_dir,
    )
    return headline(result)


def _job_title(hc: Any) -> str:
    """``run`` for a single run; ``job i/N`` for the i-th of a ``-m`` sweep's N jobs (N counted from the
    sweep's command line in its ``multirun.yaml``; ``job i`` when that does not give it)."""
    if hc.mode != RunMode.MULTIRUN:
        return "run"
    number = hc.job.num + 1
    total = _sweep_jobs(str(hc.sweep.dir))
    return f"job {number}/{total}" if total and total >= number else f"job {number}"


@functools.cache
def _sweep_jobs(sweep_dir: str) -> int | None:
    """Jobs of the ``-m`` sweep in ``sweep_dir``: the product of its overrides' value counts."""
    try:
        overrides = OmegaConf.load(Path(sweep_dir) / "multirun.yaml").hydra.overrides.task
        return math.prod(sweep_size(o) for o in parse_overrides(list(overrides)))
    except (OSError, ValueError, OmegaConfBaseException):
        return None


def _record_refusal(job_dir: Path, message: str) -> None:
    """A sweep job refused before it started: recorded as failed in the sweep's own job folder
    (where the sweep report reads it), unless that folder holds an earlier result too."""
    if (job_dir / "result.json").exists():
        return
    now = utc_now()
    JobStatus(job_dir).write(
        status="failed", started_at=now, finished_at=now, error_type="ConfigError", message=message,
        exit_reason="invalid configuration",
    )  # fmt: skip


def _failure(err: Exception) -> dict[str, Any]:
    """The ``status.json`` fields of a failed job: error type, message, exit reason, traceback."""
    if isinstance(err, JobFailed):  # reported by the worker or its supervisor
        return {
            "error_type": err.error_type,
            "message": str(err),
            "exit_reason": err.exit_reason,
            "traceback": err.traceback,
            "worker": err.worker,
        }
    return {
        "error_type": type(err).__name__,
        "message": str(err),
        "exit_reason": "invalid configuration" if getattr(err, "exit_code", 1) == 2 else "error",
        "traceback": None if isinstance(err, LlemError) else traceback.format_exc(),
    }


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.1f} ms"


@hydra.main(version_base="1.3", config_path="pkg://llem.conf", config_name="config")
def task(cfg: DictConfig) -> dict[str, Any] | None:
    return run_job(cfg)


def main() -> None:
    """``python -m llem``: check the command line, then hand over to Hydra; Ctrl-C ends it with one line."""
    argv = sys.argv[1:] = free_form_spelling(sys.argv[1:])  # Hydra reads sys.argv
    try:
        load_user_config()  # a broken user config: one clear message before Hydra starts
        job = check_command_line(argv, max_jobs=run_limit())
        if job is not None and not prints_config(argv):  # a single run: what would stop it here, now
            runner_kind = choose_runner(job.experiment.engine.value, job.settings.kind).kind
            check_job(job.experiment, runner_kind)
            _checked_before_hydra.add((config_hash(job.experiment), runner_kind))
        if MULTIRUN_FLAGS & set(argv):
            hydra_options = [o for o in override_args(argv) if o.lstrip("+~").startswith("hydra")]
            selects_slurm(hydra_options, config_name="config")  # Slurm asked for but unreachable: say so
    except LlemError as err:
        print_error(err)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        interrupted()
    try:
        task()
    except KeyboardInterrupt:
        interrupted()
    except (HydraException, ValueError) as err:  # Hydra's own handling of its flags
        print(f"llem: {hydra_message(err)}", file=sys.stderr)
        sys.exit(2)


def print_error(err: LlemError) -> None:
    """One ``llem:`` line per problem (a list of configuration issues loses its heading)."""
    lines = [line.strip().removeprefix("- ") for line in str(err).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("invalid configuration"):
        lines = lines[1:]
    for line in lines:
        print(f"llem: {line}", file=sys.stderr)


def interrupted() -> None:
    """Ctrl-C: one line and exit code 130; files already written stay (an interrupted job's
    ``status.json`` says so)."""
    print("llem: interrupted (Ctrl-C); results already written are kept", file=sys.stderr)
    sys.exit(130)
