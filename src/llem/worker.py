"""The measurement worker: ``python -m llem.worker JOB_DIR`` measures the job described there.

It reads ``JOB_DIR/experiment.json`` (written by the task app), runs :func:`llem.measure.measure`,
which writes ``result.json``, and exits 0. On failure it writes ``worker_error.json`` (error type,
message, traceback for unexpected errors) and exits with the error's code. A fresh process per
job: no CUDA state, loaded model or environment change survives into the next job.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import traceback
from pathlib import Path

from llem.config.load import load_experiment
from llem.errors import LlemError
from llem.results.io import read_json, write_json_atomic
from llem.runners import shm
from llem.runners.outcome import ERROR_FILE

log = logging.getLogger("llem.worker")


def run(job_dir: Path) -> int:
    """Measure the job in ``job_dir``; returns the exit code."""
    try:
        job = read_json(job_dir / "experiment.json")
        experiment = load_experiment(job["config"])
        from llem.measure import measure  # torch and the engine load only here

        measure(experiment, job_dir, (job.get("device_isolation") or {}).get("warnings"))
    except LlemError as err:  # the task app reports it (once) from worker_error.json
        _write_error(job_dir, err, None)
        return err.exit_code
    except Exception as err:  # reported in full: the parent records it in status.json
        log.exception("measurement failed")
        _write_error(job_dir, err, traceback.format_exc())
        return 1
    return 0


def _write_error(job_dir: Path, err: BaseException, trace: str | None) -> None:
    write_json_atomic(
        job_dir / ERROR_FILE,
        {
            "error_type": type(err).__name__,
            "message": str(err),
            "exit_code": getattr(err, "exit_code", 1),
            "traceback": trace,
        },
    )


# prctl(2) option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def stop_with_the_supervisor() -> None:
    """Die with everything the worker started when its supervisor dies or stops it.

    SIGTERM (sent by the supervisor, or by the kernel when the supervisor dies, even by SIGKILL)
    ends the worker's whole process group: engine children first, then the shared-memory segments
    they held, then the worker itself; the group's multiprocessing resource tracker is left to unlink
    what was registered with it and exit. Nothing outlives a killed study to hold a GPU or memory.
    Linux only; elsewhere the supervisor's own group kill remains.
    """
    worker = os.getpid()

    def end_group(*_: object) -> None:
        if os.getpid() != worker:  # a child forked with this handler: just go
            os._exit(128 + signal.SIGTERM)
        try:
            segments = shm.segments_of([worker])
            for _ in range(3):  # again, for any process started while the others were being killed
                members = shm.group_members(os.getpgrp())
                doomed = [pid for pid in members if pid != worker and not shm.is_resource_tracker(pid)]
                if not doomed:
                    break
                segments |= shm.kill(doomed)
            shm.remove(segments)
        finally:  # the resource tracker cleans up what it holds once this process is gone too
            os._exit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, end_group)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    supervisor = os.environ.get("LLEM_SUPERVISOR_PID")
    if supervisor and os.getppid() != int(supervisor):  # it died before prctl took effect
        os.killpg(os.getpgrp(), signal.SIGKILL)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m llem.worker JOB_DIR", file=sys.stderr)
        sys.exit(2)
    if os.environ.get("LLEM_SUPERVISOR_PID"):  # started by llem's supervisor, in a group of its own
        stop_with_the_supervisor()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(run(Path(args[0])))


if __name__ == "__main__":
    main()
