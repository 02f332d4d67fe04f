"""Runs a planned study through a Hydra launcher: order, gaps, circuit breaker, timeout, resume.

Called by llem's sweeper on the submitting machine. Each launch is a batch of runs (one run at a
time by default, for strict order and energy isolation); after each batch the runs' own
``status.json`` files decide what happened, and ``manifest.json`` is rewritten. Where a job was
killed without a verdict of its own (by Slurm), llem's launchers record the reason in its ``status.json``.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from llem.errors import LlemError
from llem.results.codec import RESULT_FILE, read_result
from llem.results.headline import headline
from llem.results.io import read_json, write_json_atomic
from llem.study.encode import encode_override
from llem.study.locks import study_owner
from llem.study.manifest import COMPLETED, FAILED, INTERRUPTED, RUNNING, SKIPPED, Manifest, utc_now

log = logging.getLogger("llem.study")

Launch = Callable[[list[list[str]], int], Sequence[Any]]


@dataclass
class Execution:
    """The resolved ``study_execution`` settings of a run of the study."""

    experiment_gap_seconds: float = 0.0
    cycle_gap_seconds: float = 0.0
    max_consecutive_failures: int = 10
    circuit_breaker_cooldown_seconds: float = 60.0
    wall_clock_timeout_hours: float | None = None
    experiment_timeout_seconds: float | None = None
    silence_timeout_seconds: float | None = None
    # engine -> runner named by `llem run --runner` or the file's runners: (None: the job decides)
    runners: dict[str, str] = field(default_factory=dict)

    def runner_overrides(self, engine: str) -> list[str]:
        """The ``runner.*`` overrides of a run of ``engine``."""
        values = {
            "kind": self.runners.get(engine),
            "experiment_timeout_seconds": self.experiment_timeout_seconds,
            "silence_timeout_seconds": self.silence_timeout_seconds,
        }
        return [encode_override(f"runner.{key}", value) for key, value in values.items() if value is not None]


class LaunchError(LlemError):
    """The launcher could not start a batch (no Slurm on this machine, sbatch refused the job)."""


class CircuitBreaker:
    """Closed -> open after N consecutive failures -> cooldown -> one probe -> closed or abort.

    N = 0 disables it; N = 1 aborts at the first failure without a probe.
    """

    def __init__(self, threshold: int, cooldown_s: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.threshold, self.cooldown_s, self.sleep = threshold, cooldown_s, sleep
        self.failures = 0
        self.probing = False

    def record(self, success: bool) -> str:
        """``continue``, ``probe`` (cooled down; the next run is the probe) or ``abort``."""
        if success:
            self.failures, self.probing = 0, False
            return "continue"
        self.failures += 1
        if self.threshold == 0 or self.failures < self.threshold:
            return "continue"
        if self.threshold == 1 or self.probing:
            return "abort"
        log.warning("%d consecutive failures: pausing %.0f s, then one probe run", self.failures, self.cooldown_s)
        self.sleep(self.cooldown_s)
        self.probing = True
        return "probe"


def job_overrides(
    run: dict[str, Any], plan: dict[str, Any], common: list[str], job_dir: str, settings: Execution
) -> list[str]:
    """Everything one job needs: its runner settings, the common (command-line) overrides, which win
    over them, the run's own, and its place in the study."""
    info = {
        "study_name": plan["study_name"],
        "design_hash": plan["study_design_hash"],
        "position": run["position"],
        "cycle": run["cycle"],
        "experiment_id": run["experiment_id"],
    }
    place = [encode_override(f"study_run.{k}", v) for k, v in info.items()]
    runner = settings.runner_overrides(run["engine"])
    return [*runner, *common, *run["overrides"], *place, encode_override("hydra.sweep.subdir", job_dir)]


def _outcome(job_path: Path) -> tuple[str, str | None, dict[str, Any] | None]:
    """``(status, error, headline)`` of a finished job, from the files it and its launcher wrote."""
    status_file = job_path / "status.json"
    if not status_file.exists():
        return FAILED, "the job wrote no status.json (killed before it started?)", None
    try:
        status = read_json(status_file)
    except LlemError as err:  # damaged: this run failed, the study goes on
        return FAILED, str(err), None
    finished = (job_path / "result.json").exists()  # written atomically, as the measurement's last act
    if finished and status.get("status") == RUNNING:  # the task died after its worker finished
        status.update(status=COMPLETED, finished_at=utc_now(), exit_reason="completed (recorded by the study)")
        write_json_atomic(status_file, status)
    if finished and status.get("status") == COMPLETED:
        return COMPLETED, None, headline(read_result(job_path / RESULT_FILE))
    if status.get("status") == RUNNING:
        return FAILED, "the job stopped without finishing (killed?)", None
    error = f"{status.get('error_type')}: {status.get('message')}"
    if status.get("error_type") == "UncompletedJobError" and "timed-out" in str(status.get("message")):
        error = f"stopped by Slurm: TIMEOUT (the time limit was near; submitit: {status.get('message')})"
    return status.get("status", FAILED), error, None


def _adopt_finished(manifest: Manifest, study_dir: Path, positions: list[int]) -> list[int]:
    """Runs launched earlier that finished unseen (a Slurm job outlives a killed ``llem run``) are
    recorded as completed, not run again; returns the positions still to run."""
    left = []
    for position in positions:
        entry = manifest.run(position)
        if entry["status"] in (RUNNING, INTERRUPTED):
            status, _, headline = _outcome(study_dir / entry["job_dir"])
            if status == COMPLETED:
                result_path = f"{entry['job_dir']}/result.json"
                manifest.update(position, status=COMPLETED, error=None, headline=headline, result_path=result_path)
                continue
        left.append(position)
    return left


def _archive_previous_attempt(job_path: Path, attempt: int) -> None:
    """Keep an earlier, unfinished attempt's files beside the new one instead of overwriting them."""
    if job_path.exists():
        shutil.move(str(job_path), str(job_path.with_name(f"{job_path.name}.attempt{attempt}")))


def execute(
    launch: Launch,
    plan: dict[str, Any],
    study_dir: Path,
    common: list[str],
    settings: Execution,
    max_batch_size: int | None = 1,
    sleep: Callable[[float], None] = time.sleep,
) -> Manifest:
    """Run every unfinished run of ``plan``, owning ``study_dir`` meanwhile; returns the final manifest."""
    with study_owner(study_dir):
        return _execute(launch, plan, study_dir, common, settings, max_batch_size, sleep)


def _execute(
    launch: Launch,
    plan: dict[str, Any],
    study_dir: Path,
    common: list[str],
    settings: Execution,
    max_batch_size: int | None,
    sleep: Callable[[float], None],
) -> Manifest:
    manifest = Manifest.open(study_dir, plan)
    pending = _adopt_finished(manifest, study_dir, manifest.unfinished())
    runs = {run["position"]: run for run in plan["runs"]}
    breaker = CircuitBreaker(settings.max_consecutive_failures, settings.circuit_breaker_cooldown_seconds, sleep)
    deadline = (
        time.monotonic() + settings.wall_clock_timeout_hours * 3600 if settings.wall_clock_timeout_hours else None
    )
    size = max_batch_size or len(pending) or 1
    progress = Progress(len(manifest.data["runs"]), len(manifest.data["runs"]) - len(pending))
    previous: dict[str, Any] | None = None
    job_index = 0
    try:
        while pending:
            if deadline is not None and time.monotonic() > deadline:
                _skip(manifest, pending, "wall_clock_timeout_hours reached")
                manifest.set_status("timed_out")
                return manifest
            batch, pending = pending[:size], pending[size:]
            if previous is not None and size == 1:
                gap = (
                    settings.cycle_gap_seconds
                    if runs[batch[0]]["cycle"] != previous["cycle"]
                    else settings.experiment_gap_seconds
                )
                if gap:
                    sleep(gap)
            progress.show(batch, runs)
            jobs = []
            for position in batch:
                entry = manifest.run(position)
                attempt = entry["attempts"] + 1
                if attempt > 1:
                    _archive_previous_attempt(study_dir / entry["job_dir"], attempt - 1)
                manifest.update(position, status=RUNNING, attempts=attempt, started_at=utc_now(), error=None)
                jobs.append(job_overrides(runs[position], plan, common, entry["job_dir"], settings))
            try:
                launch(jobs, job_index)
            except LaunchError as err:
                log.error("%s", err)
                for position in batch:
                    manifest.run(position).update(status=FAILED, error=str(err), finished_at=utc_now())
                _skip(manifest, pending, f"not launched: {err}")
                manifest.set_status("launch_failed")
                return manifest
            job_index += len(jobs)
            verdict = "continue"
            for position in batch:
                entry = manifest.run(position)
                status, error, headline = _outcome(study_dir / entry["job_dir"])
                result_path = f"{entry['job_dir']}/result.json" if status == COMPLETED else None
                manifest.update(
                    position,
                    status=status,
                    error=error,
                    headline=headline,
                    result_path=result_path,
                    finished_at=utc_now(),
                )
                verdict = breaker.record(status == COMPLETED)
                if verdict == "abort":
                    break
            previous = runs[batch[-1]]
            if verdict == "abort":
                _skip(manifest, pending, "circuit breaker: too many consecutive failures")
                manifest.set_status("circuit_breaker")
                return manifest
    except KeyboardInterrupt:
        for entry in manifest.data["runs"]:
            if entry["status"] == RUNNING:
                entry["status"] = INTERRUPTED
        manifest.set_status("interrupted")
        raise
    manifest.set_status("completed")  # ran to its end; failed runs are listed per run
    return manifest


class Progress:
    """One line per launch: position in the study, the experiment, elapsed and estimated remaining time."""

    def __init__(self, total: int, already_done: int) -> None:
        self.total, self.done_before = total, already_done
        self.started = time.monotonic()
        self.launched = 0
        self.console = Console(stderr=True, highlight=False)

    def show(self, batch: list[int], runs: dict[int, dict[str, Any]]) -> None:
        elapsed = time.monotonic() - self.started
        position = self.done_before + self.launched + 1
        left = self.total - self.done_before - self.launched
        eta = f"~{_clock(elapsed / self.launched * left)} left" if self.launched else "estimating"
        first = runs[batch[0]]
        what = f"experiment {first['experiment_id']} cycle {first['cycle']}" + (
            f" (+{len(batch) - 1} more)" if len(batch) > 1 else ""
        )
        self.console.print(f"[bold]study {position}/{self.total}[/bold] {what}  elapsed {_clock(elapsed)}, {eta}")
        self.launched += len(batch)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def _skip(manifest: Manifest, positions: list[int], reason: str) -> None:
    for position in positions:
        manifest.run(position).update(status=SKIPPED, error=reason)
    manifest.save()
