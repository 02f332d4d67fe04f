"""Results across studies: the studies, sweeps and single runs under the results folder
(``llem results``), one of them by its ID (``llem results show ID``), and every run in one flat table
for sharing (``llem results export DIR``).

An entry's ID is its folder relative to the results folder (``<study>/<time>``, ``multirun/<time>``,
``runs/<time>``): short, and stable as long as the folder is not moved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from llem.errors import LlemError
from llem.results.collect import (
    MANIFEST_FILE,
    STATUS_FILE,
    ResultFolder,
    find_result_folders,
    load_runs,
    result_folder,
    sweep_jobs,
)
from llem.results.figures import ENERGY, METRICS, number
from llem.results.io import read_json, write_parquet_atomic, write_text_atomic
from llem.results.ranking import describe, ranked, ranking_metric, varying_factors
from llem.results.summary import aggregate, parquet_ready
from llem.study.manifest import read_manifest

EXPORT_FORMATS = ("parquet", "csv")
SEARCH_DEPTH = 4  # results folder / <study> / <time> and room for one more level of grouping


@dataclass(frozen=True)
class Entry:
    """A study, sweep or single run under the results folder: its ``id`` and where it is."""

    id: str
    folder: ResultFolder


def entries(root: Path) -> list[Entry]:
    """Every study, sweep and single run under ``root``, oldest first (by start, then ID); a
    :class:`LlemError` when ``root`` does not exist."""
    if not root.is_dir():
        raise LlemError(
            f"{root}: no results folder here; results go to output.results_dir of the user config or ./outputs "
            "(llem config shows which): run llem from the folder that holds outputs/, or set output.results_dir"
        )
    base = root.expanduser().absolute()
    found = [Entry(_id(base, f.path), f) for f in find_result_folders(base, max_depth=SEARCH_DEPTH)]
    return sorted(found, key=lambda e: (started(e.folder), e.id))


def find(root: Path, ident: str) -> Entry:
    """The entry with ID ``ident`` (an existing folder's path works too); where several entries sit
    under ``ident`` (a study's name with several times), the latest of them."""
    every = entries(root)
    exact = [e for e in every if e.id == ident.rstrip("/")]
    if exact:
        return exact[0]
    below = [e for e in every if e.id.startswith(ident.rstrip("/") + "/")]
    if below:
        return below[-1]
    if Path(ident).expanduser().is_dir():
        folder = result_folder(ident)
        return next((e for e in every if e.folder.path == folder.path), Entry(str(folder.path), folder))
    known = ", ".join(e.id for e in every[-5:]) or "none"
    raise LlemError(f"no result with ID {ident!r} under {root}; `llem results` lists them (latest: {known})")


def started(folder: ResultFolder) -> str:
    """When the study, sweep or run began (UTC, ISO 8601), from its own files, else the folder's
    modification time."""
    if folder.kind == "study":
        stamp = _field(folder.path / MANIFEST_FILE, "started_at")
    else:
        jobs = sweep_jobs(folder.path) if folder.kind == "sweep" else [folder.path]
        stamp = _field(jobs[0] / STATUS_FILE, "started_at") if jobs else None
    if stamp:
        return stamp
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(folder.path.stat().st_mtime))


def overview(found: list[Entry]) -> pd.DataFrame:
    """One row per entry: ``id``, ``kind``, ``name``, ``started``, ``runs`` (count per status),
    ``engines``, ``best`` (the best experiment's varying factors, or its ID) and ``best_figure`` (its
    mean energy per output token in mJ, or output tokens per second when energy was not measured).
    An entry that cannot be read says why in ``runs``."""
    rows = []
    for entry in found:
        row = {"id": entry.id, "kind": entry.folder.kind, "name": entry.folder.name, "started": started(entry.folder)}
        try:
            runs = load_runs(entry.folder.path)
        except LlemError as err:
            rows.append({**row, "runs": f"unreadable: {err}", "engines": "", "best": "", "best_figure": ""})
            continue
        counts = runs["status"].value_counts()
        experiments = aggregate(runs)
        row["runs"] = ", ".join(f"{n} {status}" for status, n in counts.items())
        row["engines"] = ", ".join(sorted(runs["engine"].dropna().unique()))
        row["best"], row["best_figure"] = best(experiments)
        rows.append(row)
    return pd.DataFrame(rows, columns=["id", "kind", "name", "started", "runs", "engines", "best", "best_figure"])


def best(experiments: pd.DataFrame) -> tuple[str, str]:
    """The best completed experiment, described by its varying factors, and its ranking figure
    (``<mean> mJ/token`` or ``<mean> tok/s``); empty strings when none completed."""
    order = ranked(experiments)
    done = order[(order["status"] == "completed")]
    metric, _ = ranking_metric(experiments)
    if done.empty or pd.isna(done.iloc[0][f"{metric}.mean"]):
        return "", ""
    top = done.iloc[0]
    mean = top[f"{metric}.mean"]
    figure = f"{number(mean * METRICS[metric].scale)} {'mJ/token' if metric == ENERGY else 'tok/s'}"
    return describe(top, varying_factors(experiments)), figure


@dataclass(frozen=True)
class Export:
    """What :func:`export` wrote: its ``files``, the ``entries`` in them and those ``left_out`` (damaged)."""

    files: list[Path]
    entries: list[Entry]
    left_out: list[Entry]


def export(found: list[Entry], target: Path, fmt: str) -> Export:
    """Write every run of ``found`` (``runs.<fmt>``) and every experiment (``experiments.<fmt>``) into
    ``target`` (created if missing), with the ``study`` and ``source`` columns. Entries whose folder is
    damaged are left out; a :class:`LlemError` when none is left."""
    if fmt not in EXPORT_FORMATS:
        raise LlemError(f"unknown export format {fmt!r}; choose {' or '.join(EXPORT_FORMATS)}")
    readable = [e for e in found if _readable(e.folder)]
    if not readable:
        raise LlemError("no readable results to export; `llem results` lists what is there")
    runs = load_runs([e.folder.path for e in readable])
    files = []
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name, table in (("runs", runs), ("experiments", aggregate(runs))):
            path = target / f"{name}.{fmt}"
            if fmt == "parquet":
                write_parquet_atomic(path, parquet_ready(table))
            else:
                write_text_atomic(path, table.to_csv(index=False))
            files.append(path)
    except OSError as err:
        raise LlemError(
            f"{target}: cannot write the export there ({err.strerror or err}); choose another folder"
        ) from None
    return Export(files, readable, [e for e in found if e not in readable])


def _readable(folder: ResultFolder) -> bool:
    """Whether ``folder`` loads: a study's manifest is intact, a sweep has job folders."""
    try:
        if folder.kind == "study":
            read_manifest(folder.path / MANIFEST_FILE)
        return folder.kind != "sweep" or bool(sweep_jobs(folder.path))
    except LlemError:
        return False


def _id(root: Path, folder: Path) -> str:
    return folder.relative_to(root).as_posix() if folder != root else "."


def _field(path: Path, key: str) -> str | None:
    """``key`` of the JSON object in ``path``, when it is there and a string."""
    try:
        value = read_json(path).get(key)
    except (OSError, LlemError, AttributeError):
        return None
    return value if isinstance(value, str) else None
