"""The experiments of a study, sweep or comparison ranked in the terminal, best first: what ``llem run``,
a ``python -m llem ... -m`` sweep, ``llem summarize`` and ``llem results show`` print.

Ranked by mean energy per output token over the completed cycles (lower is better), or by mean output
tokens per second (higher is better) when no experiment has an energy figure. Input: the table of
:func:`llem.results.summary.aggregate`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from llem.results.figures import CLIPPED, ENERGY, METRICS, THROUGHPUT, interval, number

# Experiments shown in full; the rest are counted (the report lists every one).
SHOWN = 20
SHOWN_FAILED = 10
UNWRAPPED_MAX_CHARS = 400  # widest a ranking is printed to a log or pipe (a terminal: its own width)

# The metrics of llem.results.figures.METRICS shown, in column order.
COLUMNS = (
    ENERGY,
    "adjusted_energy_per_output_token_j",
    THROUGHPUT,
    "ttft_p90_s",
    "itl_p50_s",
    "peak_memory_mb",
)


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
    :func:`llem.results.summary.statistics`). Completed experiments without the ranking metric follow
    the ranked ones without a rank. Then a footer: what the ranking is by (or why nothing is ranked),
    the scopes of peak memory when they differ, completed runs whose result.json could not be read,
    the experiments that did not complete with their reason, and the report's path."""
    if experiments.empty:
        console.print("no experiments to rank", highlight=False)
        return
    metric, _ = ranking_metric(experiments)
    order = ranked(experiments)
    done = order[order["status"] == "completed"]
    factors = varying_factors(experiments)
    labels = source_labels(experiments)
    several = len(labels) > 1
    columns = [m for m in COLUMNS if (experiments[f"{m}.n"] > 0).any()]
    table = Table(title=title or _title(metric), title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    if several:
        table.add_column("study", overflow="fold")
    table.add_column("experiment", no_wrap=True)
    for heading in _headings(factors):
        table.add_column(escape(heading), overflow="fold")
    table.add_column("n", justify="right", no_wrap=True)
    for m in columns:
        table.add_column(METRICS[m].heading, justify="right", overflow="fold")  # wrapped, never cut short
    shown = done.head(SHOWN)
    rank = 0
    for _, row in shown.iterrows():
        scored = pd.notna(row[f"{metric}.mean"])
        rank += scored
        place = (
            ([labels[row["source"]]] if several else []) + [row["experiment_id"]] + [_value(row[f]) for f in factors]
        )
        cells = [(_interval if m == metric else _plus_minus)(row, m) for m in columns]
        table.add_row(str(rank) if scored else "-", *map(escape, map(str, place)), str(row["n"]), *cells)
    _print_unwrapped(console, table)
    lines = []
    if len(done) > len(shown):
        lines.append(f"... {len(done) - len(shown)} more completed experiments not shown")
    lines.append("mean over completed cycles with its 95% CI (low–high, or ± half-width); " + _basis(experiments))
    unranked = done[done[f"{metric}.mean"].isna()]
    if len(unranked) and len(unranked) < len(done):
        lines.append(f"- not ranked: {len(unranked)} completed experiment(s) without {_name(metric)}")
    if any(_clipped(row, m) for _, row in shown.iterrows() for m in columns):
        lines.append(f"{CLIPPED} interval clipped at 0: the cycles spread too widely for their number; unreliable")
    scopes = set(experiments["peak_memory_scope"].dropna()) if "peak_memory_scope" in experiments else set()
    if len(scopes) > 1 and "peak_memory_mb" in columns:
        lines.append(f"{METRICS['peak_memory_mb'].heading} mixes scopes: {', '.join(sorted(scopes))} (per experiment)")
    estimated = experiments[experiments["energy_estimated"]]
    if len(estimated):
        methods = ", ".join(sorted(set(estimated["energy_method"].dropna())))
        lines.append(f"energy of {len(estimated)} experiment(s) is an estimate ({methods}), not a measurement")
    lines += _unreadable_lines(order, factors, labels if several else None)
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


def _print_unwrapped(console: Console, table: Table) -> None:
    """``table`` as wide as its cells need (up to :data:`UNWRAPPED_MAX_CHARS`) where output goes to a log
    or a pipe, whose lines no terminal cuts; in a terminal, at the terminal's width."""
    if console.is_terminal:
        console.print(table)
        return
    width = console.width
    natural = Measurement.get(console, console.options.update_width(UNWRAPPED_MAX_CHARS), table).maximum
    console.width = max(width, natural)
    try:
        console.print(table)
    finally:
        console.width = width


def _basis(experiments: pd.DataFrame) -> str:
    """What the ranking is by, and why throughput when it is."""
    if ranking_metric(experiments)[0] == ENERGY:
        return "lower energy per output token is better"
    if not (experiments["n"] > 0).any():
        return "no run completed with a readable result: nothing to rank"
    return "energy not measured in any completed run: ranked by output tokens per second"


def _unreadable_lines(order: pd.DataFrame, factors: list[str], labels: dict[str, str] | None) -> list[str]:
    """One line per experiment with completed runs whose result.json could not be read."""
    if "n_unreadable" not in order:
        return []
    lines = []
    for _, row in order[order["n_unreadable"] > 0].iterrows():
        where = f"{labels[row['source']]}: " if labels else ""
        lines.append(
            f"completed but unreadable: {row['n_unreadable']} run(s) of {where}{describe(row, factors)} "
            f"({row['experiment_id']}), left out of n: {_value(row['error'])}"
        )
    return lines


def _title(metric: str) -> str:
    return "experiments by " + _name(metric)


def _headings(factors: list[str]) -> list[str]:
    """Each factor's column heading: its last key (``transformers.batch_size`` -> ``batch_size``), or the
    whole dotted path where two factors share a last key; narrow columns keep a table readable at 80."""
    paths = [f.removeprefix("config.") for f in factors]
    last = [p.rsplit(".", 1)[-1] for p in paths]
    return [short if last.count(short) == 1 else path for path, short in zip(paths, last)]


def _name(metric: str) -> str:
    return "energy per output token" if metric == ENERGY else "output tokens per second"


def _interval(row: pd.Series, metric: str) -> str:
    """``mean (low–high)`` scaled, ``*`` after a low bound clipped at 0; the mean alone with one cycle;
    ``-`` without a figure."""
    return interval(row, metric, to="–", missing="-")


def _plus_minus(row: pd.Series, metric: str) -> str:
    """``mean ±h`` scaled, ``h`` the t interval's half-width (``*`` when its low bound was clipped at 0);
    the mean alone with one cycle; ``-`` without a figure."""
    scale = METRICS[metric].scale
    mean, high = row[f"{metric}.mean"], row[f"{metric}.ci95_high"]
    if pd.isna(mean):
        return "-"
    if pd.isna(high):
        return number(mean * scale)
    return f"{number(mean * scale)} ±{number((high - mean) * scale)}{_clipped(row, metric)}"


def _clipped(row: pd.Series, metric: str) -> str:
    return CLIPPED if row.get(f"{metric}.ci95_clipped") is True else ""


def _value(value: object) -> str:
    """The value as text; ``-`` for a missing one."""
    return "-" if pd.api.types.is_scalar(value) and pd.isna(value) else str(value)
