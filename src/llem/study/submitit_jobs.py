"""A batch of study runs through hydra-submitit-launcher, waiting for every job, killed ones included.

hydra-submitit-launcher 1.2.0's ``launch()`` ends with ``[j.results()[0] for j in jobs]``: the first
job that Slurm kills (time limit, preemption, node failure, ``scancel``) raises there, and the jobs
after it are not waited for. On a cluster without accounting ``sacct`` fails, submitit reads every
state as ``UNKNOWN``, and a killed job, which never writes its result file, is waited for forever.

:func:`launch` submits exactly as that ``launch()`` does (same executor, same parameters, the launcher
itself as the pickled job), then waits for each job's result file, asking ``squeue`` meanwhile for the
state of jobs that are gone. A job that ends without a result comes back as a
:class:`~llem.study.execute.SchedulerReport` carrying Slurm's state (``TIMEOUT``, ``CANCELLED``,
``NODE_FAIL``...) and the ``slurmstepd`` line of its log.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llem.errors import ConfigError
from llem.study.execute import LaunchError, SchedulerReport

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


def is_submitit_launcher(launcher: Any) -> bool:
    """Whether ``launcher`` is hydra-submitit-launcher's (``submitit_slurm``, ``submitit_local``, presets)."""
    return type(launcher).__module__.startswith("hydra_plugins.hydra_submitit_launcher")


def selects_slurm(hydra_options: Sequence[str], config_name: str = "study") -> bool:
    """Whether these Hydra options pick a Slurm launcher (``submitit_slurm`` or a preset built on it,
    such as ``slurm_gpu``) for ``config_name`` (``study``: ``llem run``; ``config``: ``python -m llem``):
    its jobs then run on other machines. Raises ConfigError when the options do not compose, or when
    they pick Slurm and this machine cannot submit to it."""
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
    if not str(cfg.hydra.launcher._target_).endswith(".SlurmLauncher"):
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
        problem = probe.stderr.strip().splitlines()[-1] if probe.returncode else None
    except subprocess.TimeoutExpired:
        problem = "sinfo did not answer within 30 s"
    if problem:
        raise ConfigError(
            f"hydra/launcher={chosen[-1]} submits the runs to Slurm, but Slurm does not answer here ({problem}): "
            "check that SLURM_CONF names the cluster's slurm.conf and that slurmctld runs"
        )
    return True


def launch(
    launcher: Any,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Any]:
    """Submit one job per override list and wait for all; per job, its ``JobReturn`` or a
    :class:`SchedulerReport` saying why it ended without one."""
    jobs = submit(launcher, job_overrides, initial_job_idx)
    states = wait(jobs, sleep)
    return [collect(job, states.get(job.job_id)) for job in jobs]


def submit(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Any]:
    """Submit as ``BaseSubmititLauncher.launch`` does (one array when there are several jobs)."""
    import submitit
    from hydra.core.singleton import Singleton
    from hydra.core.utils import filter_overrides
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    kind = launcher._EXECUTOR
    params = dict(launcher.params)
    init = {"folder": params.pop("submitit_folder")}
    if "max_num_timeout" in params:
        init[f"{kind}_max_num_timeout"] = params.pop("max_num_timeout")
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    try:
        executor = submitit.AutoExecutor(cluster=kind, **init)
        executor.update_parameters(**{k if k in shared else f"{kind}_{k}": v for k, v in params.items()})
    except RuntimeError as err:  # submitit: 'Could not detect "srun", are you indeed on a slurm cluster?'
        raise LaunchError(f"cannot submit to Slurm from this machine: {err}") from err
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    if "mode" in launcher.config.hydra.sweep:
        os.chmod(sweep_dir, mode=int(str(launcher.config.hydra.sweep.mode), 8))
    arguments = []
    for index, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", index, " ".join(filter_overrides(overrides)))
        arguments.append((list(overrides), "hydra.sweep.dir", index, f"job_id_for_{index}", Singleton.get_state()))
    try:
        return executor.map_array(launcher, *zip(*arguments))
    except (OSError, submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as err:
        raise LaunchError(f"the {kind} scheduler refused the jobs: {_last_lines(str(err))}") from err


def wait(jobs: Sequence[Any], sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Wait until every job has a result file or has ended without one; returns the final scheduler
    state of the latter, by job id."""
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
                states[job_id] = job.state
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


def collect(job: Any, state: str | None) -> Any:
    """The job's ``JobReturn``; a :class:`SchedulerReport` when it ended without returning."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    where = f"job {job.job_id}"
    if job.paths.result_pickle.exists():
        try:
            return job.results()[0]
        except (FailedJobError, UncompletedJobError) as err:
            return SchedulerReport(f"the job failed outside llem ({where}): {_last_lines(str(err), 1)}")
    kill = KILL_LINE.findall(job.stderr() or "")
    detail = f"; {kill[-1]}" if kill else ""
    scheduler = "Slurm" if type(job).__name__ == "SlurmJob" else "submitit"
    return SchedulerReport(f"stopped by {scheduler}: {state or 'state unknown'}; {where}{detail}")


def _last_lines(text: str, n: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() and set(line.strip()) != {"-"}]
    return " | ".join(lines[-n:]) if lines else "no message"
