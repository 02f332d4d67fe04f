"""Waiting for submitit jobs, killed ones included, for llem's launchers (``hydra_plugins.llem_launcher``).

hydra-submitit-launcher's ``launch()`` asks each job for its result in turn: the first job that Slurm
kills (time limit, preemption, node failure, ``scancel``) raises there, and the jobs after it are not
waited for. On a cluster without accounting ``sacct`` fails, submitit reads every state as
``UNKNOWN``, and a killed job, which never writes its result file, is waited for forever.

:func:`wait_for_all` waits for each job's result file instead, asking ``squeue`` meanwhile for the
state of jobs that are gone. A job that ends without a result comes back as an :class:`UnfinishedJob`
carrying Slurm's state (``TIMEOUT``, ``CANCELLED``, ``NODE_FAIL``...) and the ``slurmstepd`` line of
its log; :func:`record_unfinished` writes that into the job's ``status.json``, where the study's
manifest, the sweep report and ``llem summarize`` read it.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException

from llem.errors import ConfigError
from llem.results.io import read_json, write_json_atomic
from llem.study.execute import LaunchError
from llem.study.manifest import utc_now

log = logging.getLogger("llem.study")

# Slurm job states after which a job never runs again (a requeued job goes back to PENDING), and
# llem's ENDED for a job that Slurm no longer lists and whose state sacct cannot tell.
ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED"}
ENDED |= {"TIMEOUT", "REVOKED", "SPECIAL_EXIT", "ENDED"}
# How long a job that Slurm calls ended may take to show its result file (shared file systems lag).
RESULT_GRACE_S = 15.0
# squeue is asked every POLL_MIN_S at first, then less often, never less than every POLL_MAX_S.
POLL_MIN_S, POLL_MAX_S = 2.0, 30.0
# What slurmstepd writes to a job's stderr when it kills it, e.g.
# "slurmstepd: error: *** JOB 12 ON node3 CANCELLED AT 2025-01-01T10:00:00 DUE TO TIME LIMIT ***"
KILL_LINE = re.compile(r"\*\*\* (?:JOB|STEP) .*\*\*\*")


class SubmissionError(LaunchError, CompactHydraException):
    """The scheduler refused the jobs, or cannot be reached from here. A study records it and stops;
    under ``python -m llem -m`` Hydra prints its message alone (a compact Hydra error), no traceback."""


@dataclass
class UnfinishedJob(JobReturn):
    """A job that ended without returning: stopped by the scheduler, or failed outside llem's task.

    Hydra's sweepers read each job's ``return_value`` and re-raise a failed job's exception, which
    ends the sweep; this one's is None instead: the job's ``status.json`` records why it ended, and
    the sweep goes on (its report counts the job and exits non-zero).
    """

    status: JobStatus = JobStatus.FAILED
    # status.json's error_type: JobKilled (stopped from outside) or SubmititJobError (failed outside llem)
    error_type: str = "JobKilled"
    # status.json's exit_reason, e.g. "stopped by Slurm"
    exit_reason: str = ""
    # status.json's message, e.g. "stopped by Slurm: TIMEOUT (TimeLimit); job 7_0; *** JOB 8 ON n1 ... ***"
    reason: str = ""

    @property
    def return_value(self) -> Any:
        return None


# hydra-submitit-launcher's own launchers -> llem's, which take the same fields and wait for every job
LLEM_LAUNCHERS = {
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher": "llem_slurm",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher": "llem_submitit_local",
}


def selects_slurm(hydra_options: Sequence[str], config_name: str = "study") -> bool:
    """Whether these Hydra options pick a Slurm launcher (``llem_slurm`` or a preset built on it, such
    as ``slurm_gpu``) for ``config_name`` (``study``: ``llem run``; ``config``: ``python -m llem``):
    its jobs then run on other machines. Raises ConfigError when the options do not compose, when they
    pick hydra-submitit-launcher's own ``submitit_slurm`` or ``submitit_local`` (whose sweep stops, with
    a traceback, at the first job the scheduler kills), or when they pick Slurm and this machine
    cannot submit to it."""
    chosen = [o.split("=", 1)[1] for o in hydra_options if o.lstrip("+").startswith("hydra/launcher=")]
    if not chosen:
        return False
    from hydra import compose, initialize_config_module
    from hydra.errors import HydraException

    from llem.config.store import register_configs

    register_configs()
    try:
        with initialize_config_module("llem.conf", version_base="1.3"):
            cfg = compose(config_name, overrides=list(hydra_options), return_hydra_config=True)
    except HydraException as err:
        raise ConfigError(f"{' '.join(hydra_options)}: {err}") from err
    target = str(cfg.hydra.launcher._target_)
    if target in LLEM_LAUNCHERS:
        presets = ", or the presets slurm_gpu, slurm_array" if target.endswith("SlurmLauncher") else ""
        raise ConfigError(
            f"hydra/launcher={chosen[-1]} is hydra-submitit-launcher's own launcher, whose sweep stops at the "
            f"first job the scheduler kills: choose hydra/launcher={LLEM_LAUNCHERS[target]} (the same fields, "
            f"every job waited for{presets})"
        )
    if not target.endswith("SlurmLauncher"):
        return False
    missing = [name for name in ("sbatch", "srun", "squeue") if shutil.which(name) is None]
    if missing:
        raise ConfigError(
            f"hydra/launcher={chosen[-1]} submits the runs to Slurm, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not on PATH here: run llem on a Slurm login node, "
            "or choose hydra/launcher=basic"
        )
    try:
        probe = subprocess.run(["sinfo", "--noheader", "--summarize"], capture_output=True, text=True, timeout=30)
        said = probe.stderr.strip().splitlines() or [f"sinfo exit code {probe.returncode}"]
        problem = said[-1] if probe.returncode else None
    except subprocess.TimeoutExpired:
        problem = "sinfo did not answer within 30 s"
    if problem:
        raise ConfigError(
            f"hydra/launcher={chosen[-1]} submits the runs to Slurm, but Slurm does not answer here ({problem}): "
            "check that SLURM_CONF names the cluster's slurm.conf and that slurmctld runs"
        )
    return True


def wait_for_all(jobs: Sequence[Any], sleep: Callable[[float], None] = time.sleep) -> list[JobReturn]:
    """Wait for every job; per job, its ``JobReturn`` or an :class:`UnfinishedJob` saying why it
    ended without one."""
    try:
        states = wait(jobs, sleep)
    except KeyboardInterrupt:  # Slurm jobs outlive the submitting process: say how to stop them
        left = [job.job_id for job in jobs if type(job).__name__ == "SlurmJob" and not job.paths.result_pickle.exists()]
        if left:
            log.warning("Slurm jobs %s keep running; `scancel %s` stops them", ", ".join(left), " ".join(left))
        raise
    return [collect(job, states.get(job.job_id)) for job in jobs]


def wait(jobs: Sequence[Any], sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Wait until every job has a result file or has ended without one; returns the final Slurm state
    of the Slurm jobs among the latter, by job id."""
    from submitit.slurm.slurm import SlurmJob

    pending = {job.job_id: job for job in jobs}
    states: dict[str, str] = {}
    give_up: dict[str, float] = {}  # job id -> when to stop waiting for the result file of an ended job
    seen: dict[str, str] = {}  # job id -> the last state logged
    started = next_poll = time.monotonic()
    while pending:
        now = time.monotonic()
        for job_id, job in list(pending.items()):
            if job.paths.result_pickle.exists() or now >= give_up.get(job_id, float("inf")):
                del pending[job_id]
            elif not isinstance(job, SlurmJob) and job.done():  # submitit_local: the process has exited
                give_up[job_id] = now
        slurm_jobs = [job_id for job_id, job in pending.items() if isinstance(job, SlurmJob)]
        if slurm_jobs and now >= next_poll:
            for job_id, state in squeue_states(slurm_jobs).items():
                if seen.get(job_id) != state:  # e.g. "PENDING (Resources)", "RUNNING", "TIMEOUT"
                    log.info("Slurm job %s: %s", job_id, state)
                    seen[job_id] = state
                if state.split()[0] in ENDED and job_id not in give_up:
                    states[job_id] = state
                    # a job that ran to its end wrote its result file; it may take a while to show
                    give_up[job_id] = now + (RESULT_GRACE_S if state.startswith(("COMPLETED", "FAILED")) else 0)
            next_poll = now + min(POLL_MAX_S, max(POLL_MIN_S, (now - started) / 10))
        if pending:
            sleep(0.5)
    return states


def squeue_states(job_ids: Sequence[str]) -> dict[str, str]:
    """``{job id: "STATE (reason)"}`` from one ``squeue`` call; jobs Slurm no longer remembers read
    as ended, with their state from ``sacct`` where accounting works. Empty when squeue fails."""
    wanted = set(job_ids)
    base_ids = sorted({job_id.split("_")[0] for job_id in job_ids})
    command = ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T|%r", f"--jobs={','.join(base_ids)}"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("squeue failed (%s); job states unknown for now", err)
        return {}
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        log.warning("squeue failed (%s); job states unknown for now", out.stderr.strip())
        return {}
    states = {}
    for line in out.stdout.splitlines():
        job_id, state, reason = (line.split("|") + ["", ""])[:3]
        if job_id in wanted:
            states[job_id] = state if reason in ("", "None") else f"{state} ({reason})"
    for job_id in wanted - states.keys():  # purged from slurmctld's memory (MinJobAge): it has ended
        states[job_id] = _sacct_state(job_id)
    return states


def _sacct_state(job_id: str) -> str:
    command = ["sacct", "--noheader", "--parsable2", "--allocations", "--format=State", f"--jobs={job_id}"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "ENDED (state unknown: no longer in squeue, sacct unavailable)"
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return "ENDED (state unknown: no longer in squeue, sacct unavailable)"
    state = lines[0].strip()  # e.g. "CANCELLED by 1000"
    return state if state.split()[0] in ENDED else f"ENDED ({state})"


def collect(job: Any, state: str | None) -> JobReturn:
    """The job's ``JobReturn``; an :class:`UnfinishedJob` when it ended without returning."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    where = f"job {job.job_id}"
    if job.paths.result_pickle.exists():
        try:
            return job.results()[0]
        except (FailedJobError, UncompletedJobError) as err:  # e.g. llem not importable on the node
            reason = f"the job failed outside llem ({where}): {last_lines(str(err), 1)}"
            return UnfinishedJob(error_type="SubmititJobError", exit_reason="failed outside llem", reason=reason)
    if type(job).__name__ != "SlurmJob":  # submitit_local: the job's process ended (killed?) without a result
        reason = f"ended without a result (killed?); submitit local {where}"
        return UnfinishedJob(exit_reason="ended without a result", reason=reason)
    kill = KILL_LINE.findall(job.stderr() or "")
    detail = f"; {kill[-1]}" if kill else ""
    reason = f"stopped by Slurm: {state or 'state unknown'}; {where}{detail}"
    return UnfinishedJob(exit_reason="stopped by Slurm", reason=reason)


def record_unfinished(job_dir: Path, job: UnfinishedJob) -> None:
    """Write why ``job`` ended into ``job_dir/status.json``, unless the job wrote its own verdict
    there or finished its measurement (``result.json``: the study takes that as it is)."""
    status_file = job_dir / "status.json"
    try:
        status = read_json(status_file) if status_file.exists() else {}
    except (OSError, ValueError) as err:
        log.warning("%s unreadable (%s): rewritten with the scheduler's verdict", status_file, err)
        status = {}
    if status.get("status", "running") != "running" or (job_dir / "result.json").exists():
        return
    status.update(
        status="failed",
        finished_at=utc_now(),
        error_type=job.error_type,
        message=job.reason,
        exit_reason=job.exit_reason,
    )
    write_json_atomic(status_file, status)


def last_lines(text: str, n: int = 3) -> str:
    """The last ``n`` non-empty lines of ``text`` (rulers dropped), joined by `` | ``."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() and set(line.strip()) != {"-"}]
    return " | ".join(lines[-n:]) if lines else "no message"
