"""What a report shows, read once: the runs, the experiments with their labels, and each run's result.

Runs come from :func:`llem.results.collect.load_runs`, experiments from
:func:`llem.results.summary.aggregate`, per-run details (warnings, environment, energy window,
telemetry) from each completed run's result as ``load_runs`` read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from llem.errors import ConfigError
from llem.results.collect import load_runs
from llem.results.figures import ENERGY, METRICS
from llem.results.io import read_json
from llem.results.ranking import source_labels
from llem.results.schema import RunResult
from llem.results.summary import aggregate, readable
from llem.study.manifest import SKIPPED_FILE


@dataclass
class ReportData:
    """``runs``: one row per run (plus ``label``, ``run_label``, ``readable``); ``experiments``: one row per
    experiment (plus ``label``, ``key``, ``folder``: its folder's distinct label);
    ``factors``: the ``config.*`` columns that vary; ``results``: job folder ->
    the run's result (completed runs whose result.json reads); ``not_run``: the configurations a
    study's planner refused (its ``skipped.json``), each as ``(folder label, configuration, reason)``."""

    runs: pd.DataFrame
    experiments: pd.DataFrame
    factors: list[str]
    results: dict[str, RunResult]
    not_run: list[tuple[str, str, str]]

    @property
    def several_sources(self) -> bool:
        return self.runs["source"].nunique() > 1

    @property
    def shown_metrics(self) -> list[str]:
        """The :data:`llem.results.figures.METRICS` at least one experiment has a mean of, in that order."""
        table = self.experiments
        return [m for m in METRICS if f"{m}.mean" in table and table[f"{m}.mean"].notna().any()]

    @property
    def energy_measured(self) -> bool:
        """Whether any experiment has an energy per output token."""
        return ENERGY in self.shown_metrics


def load_report_data(paths: Sequence[Path]) -> ReportData:
    """The runs and experiments of ``paths`` with labels naming the factors by name and value; a run's
    ``readable``: completed with a result.json that reads (an experiment's ``n`` counts them)."""
    results: dict[str, RunResult] = {}  # job folder -> result, of the runs that completed and read
    runs = load_runs(list(paths), results)
    experiments = aggregate(runs)
    factors = [c for c in runs.columns if c.startswith("config.")]
    sources = source_labels(experiments) if runs["source"].nunique() > 1 else None
    experiments["folder"] = experiments["source"].map(sources) if sources else experiments["study"]
    experiments["key"] = _keys(experiments, sources)
    experiments["label"] = [_label(row, factors, sources) for _, row in experiments.iterrows()]
    runs["readable"] = readable(runs)
    by_experiment = experiments.set_index(["source", "experiment_id"])
    index = pd.MultiIndex.from_frame(runs[["source", "experiment_id"]])
    runs["key"] = by_experiment["key"].reindex(index).to_numpy()
    runs["label"] = by_experiment["label"].reindex(index).to_numpy()
    runs["run_label"] = [f"{label}, cycle {cycle}" for label, cycle in zip(runs["label"], runs["cycle"])]
    folders = dict(zip(experiments["source"], experiments["folder"].astype(str)))
    return ReportData(runs, experiments, factors, results, _not_run(runs, factors, folders))


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


def _not_run(runs: pd.DataFrame, factors: list[str], folders: dict[str, str]) -> list[tuple[str, str, str]]:
    """``(folder label, configuration, reason)`` of each configuration a study's planner refused, by those
    of its overrides that set a swept factor or a key the reason names (all of them when none do); a
    ``skipped.json`` that cannot be read, or is not a list of ``{overrides, reason}``, is one entry saying
    so. ``folders``: source folder -> its label."""
    names = {factor_name(f) for f in factors}
    found = []
    for source in runs.loc[runs["kind"] == "study", "source"].drop_duplicates():
        path = Path(source) / SKIPPED_FILE
        try:
            entries = read_json(path) if path.is_file() else []
        except ConfigError as err:
            found.append((folders[source], str(path), f"cannot be read: {err}"))
            continue
        if not _refusals(entries):
            found.append((folders[source], str(path), "damaged: not a list of {overrides: [key=value, ...], reason}"))
            continue
        for entry in entries:
            overrides, reason = entry["overrides"], entry["reason"]
            swept = [o for o in overrides if (key := o.split("=", 1)[0]) in names or key in reason]
            found.append((folders[source], " ".join(swept or overrides), reason))
    return found


def _refusals(entries: object) -> bool:
    """Whether ``entries`` is what a study's ``skipped.json`` holds: a list of ``{"overrides": [str],
    "reason": str}``."""
    return isinstance(entries, list) and all(
        isinstance(e, dict)
        and isinstance(e.get("reason"), str)
        and isinstance(e.get("overrides"), list)
        and all(isinstance(o, str) for o in e["overrides"])
        for e in entries
    )
