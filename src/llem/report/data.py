"""What a report shows, read once: the runs, the experiments with their labels, and each run's result.

Runs come from :func:`llem.results.collect.load_runs`, experiments from
:func:`llem.results.summary.aggregate`, per-run details (warnings, environment, energy window,
telemetry) from each completed run's ``result.json`` through :func:`llem.results.codec.read_result`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from llem.results.codec import RESULT_FILE, ResultFormatError, read_result
from llem.results.collect import load_runs
from llem.results.figures import ENERGY
from llem.results.ranking import source_labels
from llem.results.schema import RunResult
from llem.results.summary import aggregate


@dataclass
class ReportData:
    """``runs``: one row per run (plus ``label``, ``run_label``, ``readable``); ``experiments``: one row per
    experiment (plus ``label``, ``key``, ``folder``: its folder's distinct label);
    ``factors``: the ``config.*`` columns that vary; ``results``: job folder ->
    the run's result (completed runs whose result.json reads)."""

    runs: pd.DataFrame
    experiments: pd.DataFrame
    factors: list[str]
    results: dict[str, RunResult]

    @property
    def several_sources(self) -> bool:
        return self.runs["source"].nunique() > 1

    @property
    def energy_measured(self) -> bool:
        """Whether any experiment has an energy per output token."""
        column = f"{ENERGY}.mean"
        return column in self.experiments and self.experiments[column].notna().any()


def load_report_data(paths: Sequence[Path]) -> ReportData:
    """The runs and experiments of ``paths`` with labels naming the factors by name and value; a run's
    ``readable``: completed with a result.json that reads (an experiment's ``n`` counts them)."""
    runs = load_runs(list(paths))
    experiments = aggregate(runs)
    factors = [c for c in runs.columns if c.startswith("config.")]
    sources = source_labels(experiments) if runs["source"].nunique() > 1 else None
    experiments["folder"] = experiments["source"].map(sources) if sources else experiments["study"]
    experiments["key"] = _keys(experiments, sources)
    experiments["label"] = [_label(row, factors, sources) for _, row in experiments.iterrows()]
    results = _results(runs)
    runs["readable"] = runs["job_dir"].isin(list(results))
    by_experiment = experiments.set_index(["source", "experiment_id"])
    index = pd.MultiIndex.from_frame(runs[["source", "experiment_id"]])
    runs["key"] = by_experiment["key"].reindex(index).to_numpy()
    runs["label"] = by_experiment["label"].reindex(index).to_numpy()
    runs["run_label"] = [f"{label}, cycle {cycle}" for label, cycle in zip(runs["label"], runs["cycle"])]
    return ReportData(runs, experiments, factors, results)


def factor_name(column: str) -> str:
    """``config.dtype`` -> ``dtype``."""
    return column.removeprefix("config.")


def _keys(experiments: pd.DataFrame, sources: dict[str, str] | None) -> list[str]:
    """An experiment's id, prefixed by its folder's label (:func:`llem.results.ranking.source_labels`:
    the study's name, with the time folder when one study is given twice) when several are compared."""
    ids = experiments["experiment_id"].astype(str)
    return [f"{sources[s]}/{i}" for s, i in zip(experiments["source"], ids)] if sources else list(ids)


def _label(row: pd.Series, factors: list[str], sources: dict[str, str] | None) -> str:
    """``dtype=float16, batch_size=4`` (the folder's label first when several folders are compared)."""
    parts = [f"{factor_name(f)}={row[f]}" for f in factors if f in row and pd.notna(row[f])]
    text = ", ".join(parts) or str(row["experiment_id"])
    return f"{sources[row['source']]}: {text}" if sources else text


def _results(runs: pd.DataFrame) -> dict[str, RunResult]:
    """Job folder -> result of each completed run whose result.json reads (others are reported by
    ``load_runs`` in their row's ``error``)."""
    results = {}
    for job_dir in runs.loc[runs["status"] == "completed", "job_dir"]:
        try:
            results[job_dir] = read_result(Path(job_dir) / RESULT_FILE)
        except ResultFormatError:
            continue
    return results
