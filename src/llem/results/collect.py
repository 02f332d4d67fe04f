"""One table of runs across result folders: study folders, ``-m`` sweep folders and single-run folders.

Built from each folder's files alone (a study's manifest and plan; a sweep job's or a run's
``status.json`` and ``experiment.json``; every ``result.json`` through
:func:`llem.results.codec.read_result`), so partial, crashed and running studies load too. A run
whose files are damaged keeps its row, with the reason in ``error``. Columns: docs/result-fields.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from llem.config.load import UNHASHED_FIELDS
from llem.errors import ConfigError, LlemError
from llem.results.codec import RESULT_FILE, ResultFormatError, read_result
from llem.results.io import read_json
from llem.results.schema import RunResult
from llem.results.summary import METRICS
from llem.study.manifest import read_manifest

MANIFEST_FILE, PLAN_FILE = "manifest.json", "study_plan.json"
STATUS_FILE, EXPERIMENT_FILE = "status.json", "experiment.json"
MULTIRUN_FILE = "multirun.yaml"  # Hydra writes it into every sweep folder
JOB_FILES = (RESULT_FILE, STATUS_FILE, EXPERIMENT_FILE)  # any of them makes a folder a job folder
EXPERIMENT_ID_CHARS = 8  # a study's experiment id: the first 8 hex characters of the config hash
RUN_COLUMNS = ("study", "source", "kind", "position", "experiment_id", "cycle", "engine", "status", "error", "job_dir")
EXPECTED = (
    f"a study folder ({MANIFEST_FILE}), a `python -m llem ... -m` sweep folder ({MULTIRUN_FILE}, job folders) "
    f"or a single-run folder ({RESULT_FILE} or {STATUS_FILE})"
)


@dataclass(frozen=True)
class ResultFolder:
    """A folder of results: its absolute ``path``, its ``kind`` (study, sweep or run) and its ``name``
    (the study's name; a sweep's or a run's folder name)."""

    path: Path
    kind: str
    name: str


def is_job_folder(folder: Path) -> bool:
    """Whether ``folder`` holds one job's files (result, status or experiment record)."""
    return any((folder / name).is_file() for name in JOB_FILES)


def sweep_jobs(folder: Path) -> list[Path]:
    """The job folders directly inside ``folder``, numbered ones in number order, then the others by name."""
    try:
        children = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError as err:
        raise LlemError(f"{folder}: cannot be listed ({err.strerror or err})") from None
    jobs = [p for p in children if is_job_folder(p)]
    return sorted(jobs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def kind_of(folder: Path) -> str | None:
    """``study``, ``sweep`` or ``run`` for a folder of results, None for any other folder. A sweep has
    Hydra's ``multirun.yaml`` or numbered job folders (single runs side by side are not a sweep)."""
    if (folder / MANIFEST_FILE).is_file():
        return "study"
    if is_job_folder(folder):
        return "run"
    if (folder / MULTIRUN_FILE).is_file() or any(job.name.isdigit() for job in sweep_jobs(folder)):
        return "sweep"
    return None


def result_folder(path: str | Path) -> ResultFolder:
    """The folder of results at ``path`` (a ``result.json`` or ``manifest.json`` stands for its folder);
    a :class:`LlemError` naming the path and what was expected when it holds none."""
    folder = Path(path).expanduser().absolute()
    if folder.is_file() and folder.name in (MANIFEST_FILE, *JOB_FILES):
        folder = folder.parent
    if not folder.is_dir():
        raise LlemError(f"{path}: no such folder; give {EXPECTED}")
    kind = kind_of(folder)
    if kind is None:
        below = find_result_folders(folder, max_depth=3)
        hint = f"; it holds {len(below)} below, e.g. {below[0].path}" if below else ""
        raise LlemError(f"{path}: holds no llem results; give {EXPECTED}{hint}")
    return ResultFolder(folder, kind, study_name(folder) if kind == "study" else folder.name)


def study_name(folder: Path) -> str:
    """The name a study's manifest gives, else its parent folder's name (``outputs/<study>/<time>``);
    a damaged manifest is reported when the study is loaded, not here."""
    try:
        name = read_json(folder / MANIFEST_FILE).get("study_name")
    except (ConfigError, AttributeError):
        name = None
    return name if isinstance(name, str) and name else folder.parent.name


def find_result_folders(root: Path, max_depth: int = 4) -> list[ResultFolder]:
    """Every study, sweep and run folder under ``root`` (itself included), at most ``max_depth``
    levels down, by path; a result folder's own subfolders are not searched."""
    found: list[ResultFolder] = []
    root = root.expanduser().absolute()
    for folder, subfolders, _ in os.walk(root):
        here = Path(folder)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        try:
            kind = kind_of(here)
        except LlemError:  # a folder that cannot be listed holds nothing to find
            subfolders.clear()
            continue
        if kind is not None:
            found.append(ResultFolder(here, kind, study_name(here) if kind == "study" else here.name))
            subfolders.clear()
        elif len(here.relative_to(root).parts) >= max_depth:
            subfolders.clear()
    return found


def load_runs(paths: str | Path | Sequence[str | Path], results: dict[str, RunResult] | None = None) -> pd.DataFrame:
    """One row per run across the given study, sweep and single-run folders (see the module doc);
    ``results``, when given, gets job folder -> result of each completed run whose result.json reads.

    Columns: ``study``, ``source`` (the folder, absolute), ``kind``, ``position``, ``experiment_id``,
    ``cycle``, ``engine``, ``status``, ``error``, ``job_dir`` (absolute), every metric of
    :data:`llem.results.summary.METRICS` (empty for a run without a readable result), and
    ``config.<key>`` for each config key whose value differs between the runs loaded.
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not items:
        raise LlemError(f"no folder given; give {EXPECTED}")
    folders = list({f.path: f for f in map(result_folder, items)}.values())  # each folder once
    rows, configs = [], []
    for folder in folders:
        found = list(_runs_of(folder, {} if results is None else results))
        if not found:
            raise LlemError(f"{folder.path}: a {folder.kind} folder without any run yet; nothing to load")
        loaded = {row["job_dir"] for row in rows}  # a run inside two folders given (a sweep and its job): once
        fresh = [(row, config) for row, config in found if row["job_dir"] not in loaded]
        rows += [row for row, _ in fresh]
        configs += [config for _, config in fresh]
    table = pd.DataFrame(rows, columns=[*RUN_COLUMNS, *METRICS])
    return pd.concat([table, varying_config(configs)], axis=1)


def varying_config(configs: list[dict[str, Any]]) -> pd.DataFrame:
    """``config.<key>`` columns of the flattened configs whose values differ between the runs that have
    a config (runs without one, e.g. never started, do not make every key vary)."""
    frame = pd.DataFrame(configs, dtype=object)
    known = frame.dropna(how="all")
    varying = [c for c in frame.columns if known[c].astype(str).nunique(dropna=False) > 1]
    return frame[varying].convert_dtypes().add_prefix("config.")  # whole numbers stay whole beside gaps


def _runs_of(folder: ResultFolder, results: dict[str, RunResult]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``(row, flattened config)`` of each run of ``folder``, in run order; the results read go into
    ``results`` by job folder."""
    where = {"study": folder.name, "source": str(folder.path), "kind": folder.kind}
    if folder.kind == "study":
        manifest = read_manifest(folder.path / MANIFEST_FILE)
        planned = _planned_configs(folder.path / PLAN_FILE)
        for run in manifest["runs"]:
            job = folder.path / run["job_dir"]
            place = {k: run.get(k) for k in ("position", "experiment_id", "cycle", "engine", "status", "error")}
            planned_config = planned.get(run.get("position"), {})
            yield _job_row(job, {**where, **place}, _experiment_record(job), planned_config, results)
        return
    jobs = sweep_jobs(folder.path) if folder.kind == "sweep" else [folder.path]
    cycles: dict[str, int] = {}
    for position, job in enumerate(jobs):
        experiment = _experiment_record(job)
        place = {**where, **_job_place(job, experiment[0])}
        place["position"] = int(job.name) if folder.kind == "sweep" and job.name.isdigit() else position
        place["cycle"] = cycles[place["experiment_id"]] = cycles.get(place["experiment_id"], -1) + 1
        yield _job_row(job, place, experiment, {}, results)


def _job_place(job: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Experiment id, engine, status and error of a sweep job or single run, from its own files
    (``record``: its experiment.json)."""
    status_file = job / STATUS_FILE
    status: Any = {}
    problem = None
    if status_file.is_file():
        try:
            status = read_json(status_file)
        except ConfigError as err:
            problem = str(err)
        if not isinstance(status, dict):
            status, problem = {}, problem or f"{status_file}: not a JSON object; the job's state is unknown"
    elif (job / RESULT_FILE).is_file():  # a result without its status file: it completed
        status = {"status": "completed"}
    else:
        problem = f"{status_file}: missing; the job's state is unknown"
    config_hash = record.get("config_hash")
    config = record.get("config", {})
    state = status.get("status") if isinstance(status.get("status"), str) else "unknown"
    message = None if state == "completed" else status.get("message") or status.get("exit_reason")
    return {
        "experiment_id": config_hash[:EXPERIMENT_ID_CHARS] if isinstance(config_hash, str) else job.name,
        "engine": config.get("engine"),
        "status": state,
        "error": _joined(message, problem),
    }


def _job_row(
    job: Path,
    place: dict[str, Any],
    experiment: tuple[dict[str, Any], str | None],
    planned: dict[str, Any],
    results: dict[str, RunResult],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's row (``place`` plus its job folder and metrics) and its flattened config: the one in
    ``experiment`` (its experiment.json and what is wrong with it), else the result's, else ``planned``;
    the result read goes into ``results``."""
    row = {**place, "job_dir": str(job)}
    result = None
    if row["status"] == "completed":
        try:
            result = results[str(job)] = read_result(job / RESULT_FILE)
        except ResultFormatError as err:  # one unreadable file leaves its row empty, with the reason
            row["error"] = _joined(row["error"], str(err))
    row.update({name: (figure(result) if result else None) for name, figure in METRICS.items()})
    record, problem = experiment
    row["error"] = _joined(row["error"], problem)
    config = record.get("config")
    if not isinstance(config, dict):
        config = result.config if result else planned
    return row, _flatten({k: v for k, v in config.items() if k not in UNHASHED_FIELDS})


def _experiment_record(job: Path) -> tuple[dict[str, Any], str | None]:
    """The job's ``experiment.json`` ({} when it was not written) and what is wrong with it when damaged."""
    path = job / EXPERIMENT_FILE
    if not path.is_file():
        return {}, None
    try:
        record = read_json(path)
    except ConfigError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        return {}, f"{path}: damaged (no config object); its config columns are empty"
    return record, None


def _planned_configs(plan_file: Path) -> dict[int, dict[str, Any]]:
    """Position -> the config a study's plan holds for that run ({} when the plan cannot be read)."""
    try:
        plan = read_json(plan_file)
    except (FileNotFoundError, ConfigError):
        return {}
    runs = plan.get("runs") if isinstance(plan, dict) else None
    if not isinstance(runs, list):
        return {}
    return {
        r["position"]: r["config"]
        for r in runs
        if isinstance(r, dict) and isinstance(r.get("position"), int) and isinstance(r.get("config"), dict)
    }


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys to leaf values; lists as their JSON text."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list) else value
    return flat


def _joined(first: str | None, second: str | None) -> str | None:
    """Both reasons, ``; ``-separated, or whichever there is."""
    return f"{first}; {second}" if first and second else first or second
