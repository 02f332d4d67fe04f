"""Hydra callbacks: the end-of-sweep report of a ``python -m llem ... -m`` multirun."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


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
    """After a multirun: one line per failed job, a total, and exit code 1 if any job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
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
