"""``manifest.json``: the state of a study and of each of its runs, rewritten atomically."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from llem.errors import ConfigError
from llem.results.io import read_json, write_json_atomic

SKIPPED_FILE = "skipped.json"  # beside a study's manifest: the configurations its planner refused, and why

# Run states. A run is re-run on resume unless it is completed.
PENDING, RUNNING, COMPLETED, FAILED, SKIPPED, INTERRUPTED = (
    "pending",
    "running",
    "completed",
    "failed",
    "skipped",
    "interrupted",
)


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def job_dir_name(position: int, experiment_id: str, cycle: int) -> str:
    """``<NNNN>_<experiment id>_c<cycle>``: stable across resumes."""
    return f"{position:04d}_{experiment_id}_c{cycle}"


def _entry(run: dict[str, Any]) -> dict[str, Any]:
    """A new, pending manifest entry for a planned run."""
    return {
        "position": run["position"],
        "experiment_id": run["experiment_id"],
        "cycle": run["cycle"],
        "engine": run["engine"],
        "status": PENDING,
        "job_dir": job_dir_name(run["position"], run["experiment_id"], run["cycle"]),
        "result_path": None,
        "error": None,
        "attempts": 0,
        "started_at": None,
        "finished_at": None,
        "headline": None,
    }


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest in ``path``; a :class:`ConfigError` naming the file when it is not JSON or lacks
    the shape llem writes (a study design hash and a list of runs, each with a status and job folder)."""
    data = read_json(path)
    problem = manifest_problem(data)
    if problem:
        raise ConfigError(f"{path}: {problem}; the folder is not a llem study folder or is damaged")
    return data


def manifest_problem(data: Any) -> str | None:
    """What keeps ``data`` from being a manifest, or None."""
    if not isinstance(data, dict):
        return f"expected a JSON object, found {type(data).__name__}"
    if not isinstance(data.get("study_design_hash"), str):
        return "no study_design_hash"
    runs = data.get("runs")
    if not isinstance(runs, list):
        return "no list of runs"
    for i, run in enumerate(runs):
        if not isinstance(run, dict) or not all(isinstance(run.get(k), str) for k in ("status", "job_dir")):
            return f"run {i} has no status and job_dir"
    return None


class Manifest:
    """The study's manifest; every change is written to disk before the method returns."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def open(cls, study_dir: Path, plan: dict[str, Any], status: str = "running") -> Manifest:
        """The study's existing manifest, or a new one with every run pending; the study's ``status``
        becomes ``status`` and planned runs it lacks are added as pending."""
        path = study_dir / "manifest.json"
        data = read_manifest(path) if path.exists() else None
        if data is None:
            data = {
                "study_name": plan["study_name"],
                "study_design_hash": plan["study_design_hash"],
                "started_at": utc_now(),
                "runs": [],
            }
        data["status"] = status
        data["runs"] += [_entry(run) for run in plan["runs"][len(data["runs"]) :]]
        manifest = cls(path, data)
        manifest.save()
        return manifest

    def save(self) -> None:
        self.data["updated_at"] = utc_now()
        self.data["counts"] = self.counts()
        write_json_atomic(self.path, self.data)

    def run(self, position: int) -> dict[str, Any]:
        return self.data["runs"][position]

    def update(self, position: int, **fields: Any) -> None:
        self.run(position).update(fields)
        self.save()

    def set_status(self, status: str) -> None:
        self.data["status"] = status
        if status != "running":
            self.data["finished_at"] = utc_now()
        self.save()

    def counts(self) -> dict[str, int]:
        """Runs per status."""
        counts: dict[str, int] = {}
        for run in self.data["runs"]:
            counts[run["status"]] = counts.get(run["status"], 0) + 1
        return counts

    def unfinished(self) -> list[int]:
        """Positions still to run (anything not completed), in order."""
        return [r["position"] for r in self.data["runs"] if r["status"] != COMPLETED]
