"""The ``process`` runner: the job's measurement in a fresh Python worker process on this host."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from llem.config.schema import RunnerConfig
from llem.progress import worker_environment
from llem.runners.supervise import Supervisor, WorkerExit


def worker_command(job_dir: Path) -> list[str]:
    """The command that measures the job in ``job_dir`` with this interpreter."""
    return [sys.executable, "-m", "llem.worker", str(job_dir)]


def run_process(job_dir: Path, settings: RunnerConfig, on_start: Callable[[int], None] | None = None) -> WorkerExit:
    """Spawn the worker for ``job_dir`` and supervise it; its output goes to ``worker.log`` (and is
    echoed to stderr: with live progress lines when that is a terminal)."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "LLEM_SUPERVISOR_PID": str(os.getpid()),
        **worker_environment(sys.stderr),
    }
    return Supervisor(
        worker_command(job_dir),
        job_dir / "worker.log",
        env=env,
        timeout_s=settings.experiment_timeout_seconds,
        silence_s=settings.silence_timeout_seconds,
        on_start=on_start,
    ).run()
