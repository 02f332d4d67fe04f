"""What a finished worker left behind: the result, or the reason it has none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llem.errors import JobFailed
from llem.results.codec import read_result
from llem.results.io import read_json
from llem.results.schema import RunResult
from llem.runners.supervise import WorkerExit

# What a worker writes when it fails: error type, message, exit code, traceback.
ERROR_FILE = "worker_error.json"
# Error types recorded for a worker its supervisor had to stop.
STOPPED_TYPES = {"timeout": "ExperimentTimeout", "silence": "SilenceTimeout"}


def read_outcome(job_dir: Path, exit: WorkerExit) -> tuple[RunResult, dict[str, Any]]:
    """The worker's result and exit facts; raises :class:`JobFailed` saying why there is no result."""
    worker: dict[str, Any] = exit.facts()
    if exit.reason in STOPPED_TYPES:
        raise JobFailed(STOPPED_TYPES[exit.reason], f"the worker was {exit.detail}", exit.reason, worker=worker)
    result_file, error_file = job_dir / "result.json", job_dir / ERROR_FILE
    if exit.returncode == 0 and result_file.exists():
        return read_result(result_file), worker
    if error_file.exists():
        error = read_json(error_file)
        code = int(error.get("exit_code") or 1)
        reason = "invalid configuration" if code == 2 else "error"
        raise JobFailed(
            error["error_type"],
            error["message"],
            reason,
            traceback=error.get("traceback"),
            exit_code=code,
            worker=worker,
        )
    raise JobFailed("WorkerCrashed", f"the worker ended without a result: {exit.detail}", "crashed", worker=worker)
