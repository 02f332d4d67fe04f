"""Study tables: one row per run, and per-experiment statistics across cycles (mean, std, CV, 95% t-CI).

Built from the study folder's files alone (manifest and each run's result.json, read by
:func:`llem.results.codec.read_result`), so a partial or crashed study summarises too:
``llem summarize DIR``. A completed run whose result cannot be read keeps an empty row with the
reason in ``error``. Columns: docs/result-fields.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from llem.errors import ConfigError
from llem.results.codec import RESULT_FILE, ResultFormatError, read_result
from llem.results.io import read_json, write_parquet_atomic, write_text_atomic
from llem.results.schema import RunResult
from llem.study.manifest import read_manifest

# Result fields summarised per run: column name -> the figure of a result (docs/result-fields.md).
METRICS: dict[str, Callable[[RunResult], Any]] = {
    "output_tokens": lambda r: r.tokens.output_tokens,
    "input_tokens": lambda r: r.tokens.input_tokens,
    "inference_time_s": lambda r: r.inference_time_s,
    "output_tokens_per_s": lambda r: r.throughput.output_tokens_per_s,
    "total_tokens_per_s": lambda r: r.throughput.total_tokens_per_s,
    "ttft_mean_s": lambda r: r.latency.ttft.mean_s,
    "ttft_p50_s": lambda r: r.latency.ttft.p50_s,
    "ttft_p99_s": lambda r: r.latency.ttft.p99_s,
    "itl_mean_s": lambda r: r.latency.itl.mean_s,
    "itl_p50_s": lambda r: r.latency.itl.p50_s,
    "itl_p99_s": lambda r: r.latency.itl.p99_s,
    "energy_j": lambda r: r.energy.energy_j,
    "adjusted_energy_j": lambda r: r.energy.adjusted_energy_j,
    "energy_per_output_token_j": lambda r: r.energy.energy_per_output_token_j,
    "tokens_per_joule": lambda r: r.energy.tokens_per_joule,
    "flops": lambda r: r.flops.total,
    "peak_rss_mb": lambda r: r.memory.peak_rss_mb,
    "energy_method": lambda r: r.energy.method,
    "host_busy": lambda r: r.host_load.busy if r.host_load else None,
    "n_warnings": lambda r: len(r.warnings),
}
# Metrics aggregated per experiment across cycles.
AGGREGATED = (
    "output_tokens_per_s",
    "total_tokens_per_s",
    "inference_time_s",
    "ttft_p50_s",
    "itl_p50_s",
    "energy_j",
    "adjusted_energy_j",
    "energy_per_output_token_j",
    "tokens_per_joule",
)


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list) else value
    return flat


def load(study_dir: str | Path) -> pd.DataFrame:
    """The study's runs, one row each: place, status, the config keys that vary, and the metrics."""
    folder = Path(study_dir)
    manifest = read_manifest(folder / "manifest.json")
    rows, configs = [], []
    for run in manifest["runs"]:
        row = {k: run.get(k) for k in ("position", "experiment_id", "cycle", "engine", "status", "job_dir", "error")}
        result = None
        if run["status"] == "completed":
            try:
                result = read_result(folder / run["job_dir"] / RESULT_FILE)
            except ResultFormatError as err:  # one unreadable file leaves its row empty, with the reason
                row["error"] = str(err)
        row.update({name: (figure(result) if result else None) for name, figure in METRICS.items()})
        config, problem = _config_of(folder / run["job_dir"] / "experiment.json")
        if problem:
            row["error"] = problem if row["error"] is None else f"{row['error']}; {problem}"
        configs.append(_flatten(config))
        rows.append(row)
    table = pd.DataFrame(rows)
    config_table = pd.DataFrame(configs)
    varying = [c for c in config_table.columns if config_table[c].astype(str).nunique(dropna=False) > 1]
    return pd.concat([table, config_table[varying].add_prefix("config.")], axis=1)


def _config_of(experiment_file: Path) -> tuple[dict[str, Any], str | None]:
    """The config a run's ``experiment.json`` holds ({} when it was not written), and what is wrong
    with the file when it is damaged (its run keeps a row, with the reason in ``error``)."""
    if not experiment_file.exists():
        return {}, None
    try:
        config = read_json(experiment_file).get("config")
    except (ConfigError, AttributeError):
        config = None
    if not isinstance(config, dict):
        return {}, f"{experiment_file}: damaged (no config object); its config columns are empty"
    return config, None


def t_interval(values: pd.Series) -> tuple[float, float, float, float, int]:
    """``(mean, std, cv, ci95 half-width, n)`` of ``values`` (Student's t, n - 1 degrees of freedom)."""
    clean = values.dropna().astype(float)
    n = len(clean)
    if n == 0:
        return (math.nan,) * 4 + (0,)  # type: ignore[return-value]
    mean = float(clean.mean())
    if n == 1:
        return mean, math.nan, math.nan, math.nan, 1
    from scipy import stats  # slow to import: only when there is an interval to compute

    std = float(clean.std(ddof=1))
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n))
    return mean, std, (std / mean if mean else math.nan), half, n


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Per experiment across its completed cycles: n, mean, std, CV, 95% CI bounds of each metric."""
    done = runs[runs["status"] == "completed"]
    rows = []
    for experiment_id, group in done.groupby("experiment_id", sort=False):
        row: dict[str, Any] = {"experiment_id": experiment_id, "engine": group["engine"].iloc[0], "n": len(group)}
        row.update({c: group[c].iloc[0] for c in runs.columns if c.startswith("config.")})
        for metric in AGGREGATED:
            mean, std, cv, half, n = t_interval(group[metric])
            row.update(
                {
                    f"{metric}.n": n,
                    f"{metric}.mean": mean,
                    f"{metric}.std": std,
                    f"{metric}.cv": cv,
                    f"{metric}.ci95_low": mean - half,
                    f"{metric}.ci95_high": mean + half,
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def write_summary(study_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write summary.parquet/csv (runs) and summary_experiments.parquet/csv (aggregates)."""
    folder = Path(study_dir)
    runs = load(folder)
    experiments = aggregate(runs)
    for name, table in (("summary", runs), ("summary_experiments", experiments)):
        write_parquet_atomic(folder / f"{name}.parquet", table)
        write_text_atomic(folder / f"{name}.csv", table.to_csv(index=False))
    return runs, experiments
