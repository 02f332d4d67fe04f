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

from llem.errors import LlemError


def job_statuses(sweep_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """``(job dir, status)`` of every job folder under ``sweep_dir`` that has a status.json."""
    found = []
    for path in sorted(sweep_dir.glob("*/status.json")):
        try:
            found.append((path.parent, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError) as err:
            found.append((path.parent, {"status": "unreadable", "message": str(err)}))
    return found


def rank_sweep(sweep_dir: Path, console: Console) -> None:
    """Write the sweep's summary tables and report into its folder and print its experiments ranked;
    what stops that is one warning line, never a failed sweep."""
    from llem.report import write_report_quietly  # plotly: imported only once a sweep has ended
    from llem.results.ranking import print_ranking
    from llem.results.summary import write_summary

    try:
        _, experiments = write_summary(sweep_dir)
    except (LlemError, OSError) as err:
        print(f"llem: warning: the sweep's summary was not written: {err}", file=sys.stderr)
        return
    print_ranking(experiments, console, report=write_report_quietly([sweep_dir], console))


class SweepReport(Callback):
    """After a multirun: the summary tables and the ranked experiments, one line per failed job, a
    total, and exit code 1 if any job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rank_sweep(sweep_dir, Console())
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
