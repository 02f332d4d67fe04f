"""Result tables: per-experiment statistics across cycles of the per-run table, and the study's summary files.

The per-run table comes from :func:`llem.results.collect.load_runs` (any mix of study, sweep and
single-run folders); :data:`METRICS` are its metric columns, each a figure of the typed result.
``llem summarize DIR`` writes both tables into the folder. Columns: docs/result-fields.md.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from llem.errors import LlemError
from llem.results.io import write_parquet_atomic, write_text_atomic
from llem.results.schema import RunResult

if TYPE_CHECKING:
    from rich.console import Console

CUDA_PEAK, HOST_PEAK = "cuda peak allocated", "peak rss"  # the scopes of peak_memory_mb


def peak_memory_scope(result: RunResult) -> str | None:
    """What :func:`peak_memory_mb` is: :data:`CUDA_PEAK` when torch measured it, :data:`HOST_PEAK` (the
    process's peak resident set) for a model on the CPU, else None (a GPU peak that was not measured:
    the host's figure would not be the model's)."""
    if result.memory.cuda_peak_allocated_mb is not None:
        return CUDA_PEAK
    return HOST_PEAK if result.model.device.startswith("cpu") else None


def peak_memory_mb(result: RunResult) -> float | None:
    """MiB of the model's device at its peak: see :func:`peak_memory_scope`."""
    scope = peak_memory_scope(result)
    return {CUDA_PEAK: result.memory.cuda_peak_allocated_mb, HOST_PEAK: result.memory.peak_rss_mb}.get(scope)


# Result fields summarised per run: column name -> the figure of a result (docs/result-fields.md).
METRICS: dict[str, Callable[[RunResult], Any]] = {
    "output_tokens": lambda r: r.tokens.output_tokens,
    "input_tokens": lambda r: r.tokens.input_tokens,
    "inference_time_s": lambda r: r.inference_time_s,
    "output_tokens_per_s": lambda r: r.throughput.output_tokens_per_s,
    "total_tokens_per_s": lambda r: r.throughput.total_tokens_per_s,
    "ttft_mean_s": lambda r: r.latency.ttft.mean_s,
    "ttft_p50_s": lambda r: r.latency.ttft.p50_s,
    "ttft_p90_s": lambda r: r.latency.ttft.p90_s,
    "ttft_p99_s": lambda r: r.latency.ttft.p99_s,
    "itl_mean_s": lambda r: r.latency.itl.mean_s,
    "itl_p50_s": lambda r: r.latency.itl.p50_s,
    "itl_p90_s": lambda r: r.latency.itl.p90_s,
    "itl_p99_s": lambda r: r.latency.itl.p99_s,
    "energy_j": lambda r: r.energy.energy_j,
    "adjusted_energy_j": lambda r: r.energy.adjusted_energy_j,
    "energy_per_output_token_j": lambda r: r.energy.energy_per_output_token_j,
    "adjusted_energy_per_output_token_j": lambda r: r.energy.adjusted_energy_per_output_token_j,
    "tokens_per_joule": lambda r: r.energy.tokens_per_joule,
    "energy_method": lambda r: r.energy.method,
    "energy_estimated": lambda r: r.energy.energy_j is not None and not r.energy.measured,
    "flops": lambda r: r.flops.total,
    "peak_rss_mb": lambda r: r.memory.peak_rss_mb,
    "peak_memory_mb": peak_memory_mb,
    "peak_memory_scope": peak_memory_scope,
    "host_busy": lambda r: r.host_load.busy if r.host_load else None,
    "n_warnings": lambda r: len(r.warnings),
}
# Metrics aggregated per experiment across its completed cycles.
AGGREGATED = (
    "output_tokens_per_s",
    "total_tokens_per_s",
    "inference_time_s",
    "ttft_p50_s",
    "ttft_p90_s",
    "itl_p50_s",
    "itl_p90_s",
    "energy_j",
    "adjusted_energy_j",
    "energy_per_output_token_j",
    "adjusted_energy_per_output_token_j",
    "tokens_per_joule",
    "peak_memory_mb",
)
# An experiment's status when none of its runs completed: the first of these its runs have.
STATUS_ORDER = ("failed", "interrupted", "running", "pending", "skipped")


def statistics(values: np.ndarray) -> dict[str, Any]:
    """``n``, ``mean``, ``std`` (sample, n - 1), ``cv`` (std / mean), ``ci95_low``, ``ci95_high`` and
    ``ci95_clipped`` of ``values`` (NaN left out); the interval is
    :func:`llem.results.compare.mean_interval`'s: Student's t, its lower bound clipped at 0 (and
    ``ci95_clipped`` true) where it would go below, the values being non-negative."""
    from llem.results.compare import mean_interval  # scipy: imported once there is an interval

    clean = values[~np.isnan(values)]
    interval = mean_interval(clean, nonnegative=bool((clean >= 0).all()))
    std = float(clean.std(ddof=1)) if clean.size > 1 else math.nan
    return {
        "n": interval.n,
        "mean": interval.mean,
        "std": std,
        "cv": std / interval.mean if interval.mean else math.nan,
        "ci95_low": interval.low,
        "ci95_high": interval.high,
        "ci95_clipped": interval.n > 1 and interval.note is not None,  # the one note beyond n == 1
    }


def experiment_status(statuses: pd.Series) -> str:
    """``completed`` when any run completed, else the first status of :data:`STATUS_ORDER` present."""
    present = set(statuses.dropna())
    if "completed" in present:
        return "completed"
    return next((s for s in STATUS_ORDER if s in present), statuses.iloc[0])


def readable(runs: pd.DataFrame) -> pd.Series:
    """Whether each run's result.json was read: ``n_warnings`` is a count for every result read, empty
    for every run without one."""
    return runs["n_warnings"].notna()


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment (per source folder and experiment id), in run order: its study, engine,
    ``n`` completed runs with a readable result of ``n_runs``, ``n_unreadable`` completed runs whose
    result.json could not be read, ``status``, ``error`` (the reason when none completed, else why a
    completed run's result could not be read), energy method(s), ``peak_memory_scope`` (the scopes of
    its peak memory), the ``config.*`` columns (of the runs' types), and per metric of
    :data:`AGGREGATED` across the completed cycles: ``<m>.n``, ``.mean``, ``.std``, ``.cv``,
    ``.ci95_low``, ``.ci95_high``, ``.ci95_clipped`` (see :func:`statistics`)."""
    config_columns = [c for c in runs.columns if c.startswith("config.")]
    rows = []
    read = readable(runs)
    for (source, experiment_id), group in runs.groupby(["source", "experiment_id"], sort=False, dropna=False):
        completed, ok = group["status"] == "completed", read[group.index]
        done, unreadable = group[completed & ok], group[completed & ~ok]
        status = experiment_status(group["status"])
        errors = (group if status != "completed" else unreadable)["error"].dropna()
        methods = done["energy_method"].dropna().unique()
        scopes = done["peak_memory_scope"].dropna().unique()
        row: dict[str, Any] = {
            "study": group["study"].iloc[0],
            "source": source,
            "experiment_id": experiment_id,
            "engine": next(iter(group["engine"].dropna()), None),
            "n": len(done),
            "n_runs": len(group),
            "n_unreadable": len(unreadable),
            "status": status,
            "error": errors.iloc[0] if len(errors) else None,
            "energy_method": ", ".join(methods) if len(methods) else None,
            "energy_estimated": bool(done["energy_estimated"].fillna(False).astype(bool).any()),
            "peak_memory_scope": ", ".join(scopes) if len(scopes) else None,
        }
        row.update({c: next(iter(group[c].dropna()), None) for c in config_columns})
        figures = done[list(AGGREGATED)].to_numpy(dtype=float, na_value=np.nan)  # one array: fast
        for i, metric in enumerate(AGGREGATED):
            row.update({f"{metric}.{k}": v for k, v in statistics(figures[:, i]).items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    # A key some runs lack would turn whole numbers into floats (batch_size=1.0): the runs' types back.
    return table.astype({c: runs[c].dtype for c in config_columns}) if rows else table


def parquet_ready(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each column of mixed Python types (a config key that is a number in one study and
    text in another) as text, which Parquet requires; empty values stay empty."""
    mixed = [c for c in table.columns if table[c].dtype == object and table[c].dropna().map(type).nunique() > 1]
    return table.assign(**{c: table[c].map(lambda v: None if pd.isna(v) else str(v)) for c in mixed})


def write_tables(runs: pd.DataFrame, experiments: pd.DataFrame, folder: Path) -> None:
    """Write summary.parquet/csv (``runs``) and summary_experiments.parquet/csv (``experiments``) into
    ``folder``; a :class:`LlemError` naming the file that cannot be written."""
    path = folder
    try:
        for name, table in (("summary", runs), ("summary_experiments", experiments)):
            path = folder / f"{name}.parquet"
            write_parquet_atomic(path, parquet_ready(table))
            path = folder / f"{name}.csv"
            write_text_atomic(path, table.to_csv(index=False))
    except OSError as err:
        raise LlemError(
            f"{path}: cannot be written ({err.strerror or err}); make the folder writable or move what is in the way"
        ) from None


def tables(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run table (:func:`llem.results.collect.load_runs`) of ``folder`` and its :func:`aggregate`."""
    from llem.results.collect import load_runs  # collect reads METRICS from here

    runs = load_runs(folder)
    return runs, aggregate(runs)


def summarize_quietly(folder: Path, console: Console, *, rank: bool = True) -> None:
    """At the end of a study or sweep: write its summary tables into ``folder`` and, when ``rank``,
    its report, and print its experiments ranked. Whatever stops a step is one warning line on stderr,
    never a failed study or sweep: the results themselves are safe on disk."""
    from llem.report import write_report_quietly  # altair: imported only once a study or sweep has ended
    from llem.results.ranking import print_ranking

    try:
        runs, experiments = tables(folder)
    except Exception as err:  # noqa: BLE001  (any failure: the results themselves are safe on disk)
        _warn(f"{folder}: not summarised", err)
        return
    try:
        write_tables(runs, experiments, Path(runs["source"].iloc[0]))
    except Exception as err:  # noqa: BLE001
        _warn("summary tables not written", err)
    if not rank:
        return
    try:
        print_ranking(experiments, console, report=write_report_quietly([folder], console))
    except Exception as err:  # noqa: BLE001
        _warn(f"{folder}: ranking not printed", err)


def _warn(what: str, err: BaseException) -> None:
    print(f"llem: warning: {what}: {str(err) or type(err).__name__}", file=sys.stderr)
