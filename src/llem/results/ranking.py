"""The experiments of a study, sweep or comparison ranked in the terminal, best first: what ``llem run``,
a ``python -m llem ... -m`` sweep, ``llem summarize`` and ``llem results show`` print.

Ranked by mean energy per output token over the completed cycles (lower is better), or by mean output
tokens per second (higher is better) when no experiment has an energy figure. Input: the table of
:func:`llem.results.summary.aggregate`.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Experiments shown in full; the rest are counted (the report lists every one).
SHOWN = 20
SHOWN_FAILED = 10
# (metric of AGGREGATED, column title, factor from the metric's unit to the shown one)
COLUMNS = (
    ("energy_per_output_token_j", "energy/token mJ", 1e3),
    ("adjusted_energy_per_output_token_j", "adjusted mJ", 1e3),
    ("output_tokens_per_s", "output tok/s", 1.0),
    ("ttft_p90_s", "TTFT p90 ms", 1e3),
    ("itl_p50_s", "ITL p50 ms", 1e3),
    ("peak_memory_mb", "peak MiB", 1.0),
)
ENERGY, THROUGHPUT = "energy_per_output_token_j", "output_tokens_per_s"
CLIPPED = "*"  # marks an interval whose lower bound was clipped at 0


def ranking_metric(experiments: pd.DataFrame) -> tuple[str, bool]:
    """``(metric, lower is better)``: energy per output token when any experiment has a figure, else
    output tokens per second."""
    if f"{ENERGY}.n" in experiments and (experiments[f"{ENERGY}.n"] > 0).any():
        return ENERGY, True
    return THROUGHPUT, False


def ranked(experiments: pd.DataFrame) -> pd.DataFrame:
    """Experiments with a figure of the ranking metric, best first; then the completed ones without
    it; then those that did not complete (in their order)."""
    metric, lower = ranking_metric(experiments)
    mean = experiments[f"{metric}.mean"]
    scored = experiments[mean.notna()].sort_values(f"{metric}.mean", ascending=lower, kind="stable")
    rest = experiments[mean.isna()]
    completed = rest["status"] == "completed"
    return pd.concat([scored, rest[completed], rest[~completed]])


def varying_factors(experiments: pd.DataFrame) -> list[str]:
    """The ``config.*`` columns whose values differ between ``experiments``."""
    return [c for c in experiments.columns if c.startswith("config.") and experiments[c].astype(str).nunique() > 1]


def source_labels(experiments: pd.DataFrame) -> dict[str, str]:
    """Each source folder's shortest distinct label: its study name, else with the folder's own name
    after it (two runs of one study), else the whole path."""
    names = experiments.drop_duplicates("source").set_index("source")["study"].astype(str)
    for label in (lambda src, name: name, lambda src, name: f"{name}/{Path(src).name}"):
        labels = {src: label(src, name) for src, name in names.items()}
        if len(set(labels.values())) == len(labels):
            return labels
    return {src: src for src in names.index}


def describe(experiment: pd.Series, factors: list[str]) -> str:
    """``key=value`` of each factor (``config.`` left out), or the experiment id when none varies."""
    if not factors:
        return str(experiment["experiment_id"])
    return " ".join(f"{f.removeprefix('config.')}={_value(experiment[f])}" for f in factors)


def print_ranking(
    experiments: pd.DataFrame, console: Console, *, report: Path | None = None, title: str | None = None
) -> None:
    """Print the ranked table: rank, study (when several), experiment id, each varying factor by name,
    n completed cycles, and the mean over cycles of energy per output token, output tokens per second,
    TTFT p90, ITL p50 and peak memory (a column without any figure is left out) with its 95% CI (the
    ranking metric's as low–high, the others' as ± half-width; ``*`` where clipped at 0, see
    :func:`llem.results.summary.statistics`); then the experiments that did not complete with their
    reason, and the report's path."""
    if experiments.empty:
        console.print("no experiments to rank", highlight=False)
        return
    metric, lower = ranking_metric(experiments)
    order = ranked(experiments)
    done = order[order["status"] == "completed"]
    factors = varying_factors(experiments)
    labels = source_labels(experiments)
    several = len(labels) > 1
    columns = [c for c in COLUMNS if (experiments[f"{c[0]}.n"] > 0).any()]
    table = Table(title=title or _title(metric), title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    if several:
        table.add_column("study", overflow="fold")
    table.add_column("experiment", no_wrap=True)
    for factor in factors:
        table.add_column(escape(factor.removeprefix("config.")), overflow="fold")
    table.add_column("n", justify="right", no_wrap=True)
    for _, heading, _ in columns:
        table.add_column(heading, justify="right", overflow="fold")  # wrapped, never cut short
    shown = done.head(SHOWN)
    for rank, (_, row) in enumerate(shown.iterrows(), start=1):
        place = (
            ([labels[row["source"]]] if several else []) + [row["experiment_id"]] + [_value(row[f]) for f in factors]
        )
        cells = [(_interval if m == metric else _plus_minus)(row, m, scale) for m, _, scale in columns]
        table.add_row(str(rank), *map(escape, map(str, place)), str(row["n"]), *cells)
    console.print(table)
    lines = []
    if len(done) > len(shown):
        lines.append(f"... {len(done) - len(shown)} more completed experiments not shown")
    lines.append(
        "mean over completed cycles with its 95% CI (low–high, or ± half-width); "
        + ("lower energy per output token is better" if lower else "energy not measured: ranked by throughput")
    )
    if any(_clipped(row, m) for _, row in shown.iterrows() for m, _, _ in columns):
        lines.append(f"{CLIPPED} interval clipped at 0: the cycles spread too widely for their number; unreliable")
    estimated = experiments[experiments["energy_estimated"]]
    if len(estimated):
        methods = ", ".join(sorted(set(estimated["energy_method"].dropna())))
        lines.append(f"energy of {len(estimated)} experiment(s) is an estimate ({methods}), not a measurement")
    failed = order[order["status"] != "completed"]
    for _, row in failed.head(SHOWN_FAILED).iterrows():
        where = f"{labels[row['source']]}: " if several else ""
        lines.append(
            f"{row['status']}: {where}{describe(row, factors)} ({row['experiment_id']}): {_value(row['error'])}"
        )
    if len(failed) > SHOWN_FAILED:
        lines.append(f"... {len(failed) - SHOWN_FAILED} more experiments did not complete")
    if report is not None:
        lines.append(f"report: {report}")
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def _title(metric: str) -> str:
    return "experiments by " + ("energy per output token" if metric == ENERGY else "output tokens per second")


def _interval(row: pd.Series, metric: str, scale: float) -> str:
    """``mean (low–high)`` scaled, ``*`` after a low bound clipped at 0; the mean alone with one cycle;
    ``-`` without a figure."""
    mean, low, high = (row[f"{metric}.{k}"] for k in ("mean", "ci95_low", "ci95_high"))
    if pd.isna(mean):
        return "-"
    if pd.isna(low) or pd.isna(high):
        return _number(mean * scale)
    return f"{_number(mean * scale)} ({_number(low * scale)}{_clipped(row, metric)}–{_number(high * scale)})"


def _plus_minus(row: pd.Series, metric: str, scale: float) -> str:
    """``mean ±h`` scaled, ``h`` the t interval's half-width (``*`` when its low bound was clipped at 0);
    the mean alone with one cycle; ``-`` without a figure."""
    mean, high = row[f"{metric}.mean"], row[f"{metric}.ci95_high"]
    if pd.isna(mean):
        return "-"
    if pd.isna(high):
        return _number(mean * scale)
    return f"{_number(mean * scale)} ±{_number((high - mean) * scale)}{_clipped(row, metric)}"


def _clipped(row: pd.Series, metric: str) -> str:
    return CLIPPED if row.get(f"{metric}.ci95_clipped") is True else ""


def _number(value: float) -> str:
    """Three significant figures; whole numbers from 1000 up, with thousands separators."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _value(value: object) -> str:
    """The value as text; ``-`` for a missing one."""
    return "-" if pd.api.types.is_scalar(value) and pd.isna(value) else str(value)
