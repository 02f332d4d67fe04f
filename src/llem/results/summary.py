"""Result tables: per-experiment statistics across cycles of the per-run table, and the study's summary files.

The per-run table comes from :func:`llem.results.collect.load_runs` (any mix of study, sweep and
single-run folders); :data:`METRICS` are its metric columns, each a figure of the typed result.
``llem summarize DIR`` writes both tables into the folder. Columns: docs/result-fields.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llem.results.io import write_parquet_atomic, write_text_atomic
from llem.results.schema import RunResult


def peak_memory_mb(result: RunResult) -> float:
    """MiB: CUDA peak allocated when torch measured it, else the process's peak resident set."""
    cuda = result.memory.cuda_peak_allocated_mb
    return cuda if cuda is not None else result.memory.peak_rss_mb


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
    "peak_memory_scope": lambda r: "cuda peak allocated" if r.memory.cuda_peak_allocated_mb is not None else "peak rss",
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


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per experiment (per source folder and experiment id), in run order: its study, engine,
    ``n`` completed runs of ``n_runs``, ``status`` and ``error`` (the reason when none completed),
    energy method(s), the ``config.*`` columns, and per metric of :data:`AGGREGATED` across the
    completed cycles: ``<m>.n``, ``.mean``, ``.std``, ``.cv``, ``.ci95_low``, ``.ci95_high``,
    ``.ci95_clipped`` (see :func:`statistics`)."""
    config_columns = [c for c in runs.columns if c.startswith("config.")]
    rows = []
    for (source, experiment_id), group in runs.groupby(["source", "experiment_id"], sort=False, dropna=False):
        done = group[group["status"] == "completed"]
        status = experiment_status(group["status"])
        errors = group["error"].dropna()
        methods = done["energy_method"].dropna().unique()
        row: dict[str, Any] = {
            "study": group["study"].iloc[0],
            "source": source,
            "experiment_id": experiment_id,
            "engine": next(iter(group["engine"].dropna()), None),
            "n": len(done),
            "n_runs": len(group),
            "status": status,
            "error": errors.iloc[0] if status != "completed" and len(errors) else None,
            "energy_method": ", ".join(methods) if len(methods) else None,
            "energy_estimated": bool(done["energy_estimated"].fillna(False).astype(bool).any()),
        }
        row.update({c: next(iter(group[c].dropna()), None) for c in config_columns})
        figures = done[list(AGGREGATED)].to_numpy(dtype=float, na_value=np.nan)  # one array: fast
        for i, metric in enumerate(AGGREGATED):
            row.update({f"{metric}.{k}": v for k, v in statistics(figures[:, i]).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def parquet_ready(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with each column of mixed Python types (a config key that is a number in one study and
    text in another) as text, which Parquet requires; empty values stay empty."""
    mixed = [c for c in table.columns if table[c].dtype == object and table[c].dropna().map(type).nunique() > 1]
    return table.assign(**{c: table[c].map(lambda v: None if pd.isna(v) else str(v)) for c in mixed})


def write_summary(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write summary.parquet/csv (runs) and summary_experiments.parquet/csv (experiments) into a study
    or sweep ``folder``; returns both tables."""
    from llem.results.collect import load_runs  # collect reads METRICS from here

    runs = load_runs(folder)
    experiments = aggregate(runs)
    target = Path(runs["source"].iloc[0]) if len(runs) else Path(folder)
    for name, table in (("summary", runs), ("summary_experiments", experiments)):
        write_parquet_atomic(target / f"{name}.parquet", parquet_ready(table))
        write_text_atomic(target / f"{name}.csv", table.to_csv(index=False))
    return runs, experiments
