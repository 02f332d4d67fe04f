"""Hydra callbacks: the end of a ``python -m llem ... -m`` multirun: its summary tables, its experiments
ranked, its failed jobs and a total."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from rich.console import Console


def job_statuses(sweep_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """``(job dir, status)`` of every job folder under ``sweep_dir`` that has a status.json."""
    found = []
    for path in sorted(sweep_dir.glob("*/status.json")):
        try:
            found.append((path.parent, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError) as err:
            found.append((path.parent, {"status": "unreadable", "message": str(err)}))
    return found


class SweepReport(Callback):
    """After a multirun: the summary tables and the ranked experiments, one line per failed job, a
    total, and exit code 1 if any job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from llem.results.summary import summarize_quietly  # pandas: imported only once a sweep has ended

        sweep_dir = Path(config.hydra.sweep.dir)
        summarize_quietly(sweep_dir, Console())  # what stops it is a warning line, never a failed sweep
        statuses = job_statuses(sweep_dir)
        failed = [(d, s) for d, s in statuses if s.get("status") != "completed"]
        for job_dir, status in failed:
            print(f"llem: job {job_dir.name} {status.get('status')}: {status.get('message', '')}", file=sys.stderr)
        killed = sum(s.get("error_type") == "JobKilled" for _, s in failed)  # recorded by llem's launchers
        print(
            f"llem: sweep finished: {len(statuses) - len(failed)}/{len(statuses)} jobs completed"
            f"{f', {killed} killed' if killed else ''}; results in {sweep_dir}",
            file=sys.stderr,
        )
        if failed:
            sys.exit(1)
