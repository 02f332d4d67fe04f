"""Pareto fronts of the experiments' means (non-dominated ones highlighted) and the effect of each swept
factor (each figure against the factor's levels, one line per combination of the other factors),
with 95% CI error bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llem.report.data import ReportData, factor_name
from llem.results.compare import pareto_front
from llem.results.figures import ENERGY, METRICS, THROUGHPUT

FRONT_COLOUR, OTHER_COLOUR = "#d62728", "#8c9bab"
MAX_LEGEND_GROUPS = 12  # more lines than this: the legend is hidden, hovering names each line


def pareto_pairs(data: ReportData) -> list[tuple[str, str]]:
    """``(x, y)`` metric pairs to draw: energy per output token against throughput, TTFT p90 and ITL
    p50 when energy was measured, else throughput against the two latencies."""
    present = [m for m in METRICS if _has(data.experiments, m)]
    anchor = ENERGY if ENERGY in present else THROUGHPUT
    others = [m for m in (THROUGHPUT, "ttft_p90_s", "itl_p50_s") if m in present and m != anchor]
    return [(x, anchor) for x in others] if anchor in present else []


def pareto_figure(data: ReportData, x: str, y: str) -> go.Figure:
    """The experiments' means of ``y`` against ``x``; the non-dominated ones in red, joined by a line."""
    table = data.experiments[data.experiments[f"{x}.mean"].notna() & data.experiments[f"{y}.mean"].notna()]
    minimize = [m for m in (x, y) if METRICS[m].lower_is_better]
    maximize = [m for m in (x, y) if not METRICS[m].lower_is_better]
    means = table[[f"{x}.mean", f"{y}.mean"]].set_axis([x, y], axis=1)
    on_front = pareto_front(means, minimize=minimize, maximize=maximize)
    figure = go.Figure()
    for name, rows, colour in (
        ("other", table[~on_front], OTHER_COLOUR),
        ("Pareto front", table[on_front], FRONT_COLOUR),
    ):
        rows = rows.sort_values(f"{x}.mean")
        figure.add_trace(
            go.Scatter(
                x=_scaled(rows, x, "mean"),
                y=_scaled(rows, y, "mean"),
                error_x=_error_bar(rows, x),
                error_y=_error_bar(rows, y),
                mode="lines+markers" if name == "Pareto front" else "markers",
                name=name,
                marker={"color": colour, "size": 9 if name == "Pareto front" else 7},
                line={"color": colour, "dash": "dot"},
                hovertext=rows["label"].tolist(),
                hovertemplate="%{hovertext}<br>" + _axis(x) + ": %{x:.3g}<br>" + _axis(y) + ": %{y:.3g}<extra></extra>",
            )
        )
    figure.update_layout(
        xaxis_title=_axis(x), yaxis_title=_axis(y), height=420, margin={"t": 30, "b": 50}, legend={"orientation": "h"}
    )
    return figure


def effect_figure(data: ReportData, factor: str, metrics: list[str]) -> go.Figure:
    """Each of ``metrics`` (one panel each) against the levels of ``factor``: one line per combination of
    the other factors (and folder), at each experiment's mean with its 95% CI. Past
    :data:`MAX_LEGEND_GROUPS` lines they are drawn as one trace, broken between lines, hover giving each
    point's experiment id."""
    others = (["folder"] if data.several_sources else []) + [f for f in data.factors if f != factor]
    table = data.experiments[data.experiments["status"] == "completed"]
    groups = (
        [(_group_name(others, levels), rows) for levels, rows in table.groupby(others, sort=False, dropna=False)]
        if others
        else [("all", table)]
    )
    figure = make_subplots(rows=1, cols=len(metrics), subplot_titles=[_axis(m) for m in metrics])
    for col, metric in enumerate(metrics, start=1):
        if len(groups) > MAX_LEGEND_GROUPS:
            gap = pd.DataFrame([{}])  # a row of missing values breaks the line between two groups
            rows = pd.concat([part for _, g in groups for part in (g, gap)], ignore_index=True)
            names = [*rows["key"].fillna("").astype(str)]  # each point by experiment id: the table names its factors
            figure.add_trace(_effect_trace(rows, factor, metric, names, "#1f77b4", False), row=1, col=col)
            continue
        for index, (name, rows) in enumerate(groups):
            trace = _effect_trace(rows, factor, metric, [name] * len(rows), _colour(index), col == 1)
            figure.add_trace(trace, row=1, col=col)
    figure.update_xaxes(title_text=factor_name(factor), type="category")
    figure.update_layout(height=380, margin={"t": 40, "b": 50}, legend={"orientation": "h", "y": -0.25})
    return figure


def _effect_trace(
    rows: pd.DataFrame, factor: str, metric: str, names: list[str], colour: str, legend: bool
) -> go.Scatter:
    levels = [None if pd.isna(v) else str(v) for v in rows[factor]] if factor in rows else [None] * len(rows)
    per_point = len(set(names)) > 1  # else the hover names the line once, not the same text at every point
    label = "hovertext" if per_point else "fullData.name"
    return go.Scatter(
        x=levels,
        y=_scaled(rows, metric, "mean"),
        error_y=_error_bar(rows, metric),
        mode="lines+markers",
        name=names[0] if names else "",
        legendgroup=names[0] if names else "",
        showlegend=legend,
        marker={"color": colour},
        line={"color": colour},
        hovertext=names if per_point else None,
        hovertemplate=f"%{{{label}}}<br>{factor_name(factor)}=%{{x}}<br>%{{y:.3g}}<extra></extra>",
    )


def _group_name(columns: list[str], levels: object) -> str:
    values = levels if isinstance(levels, tuple) else (levels,)
    return ", ".join(f"{factor_name(c)}={v}" for c, v in zip(columns, values))


def effect_metrics(data: ReportData) -> list[str]:
    """The figures drawn against each factor: energy per output token (when measured), throughput, TTFT p90."""
    return [m for m in (ENERGY, THROUGHPUT, "ttft_p90_s") if _has(data.experiments, m)]


def _has(table: pd.DataFrame, metric: str) -> bool:
    return f"{metric}.mean" in table and table[f"{metric}.mean"].notna().any()


def _axis(metric: str) -> str:
    return METRICS[metric].label


def _scaled(rows: pd.DataFrame, metric: str, field: str) -> np.ndarray:
    """In the metric's display unit, as float32 (plotly writes numpy arrays compactly, base64)."""
    return (rows[f"{metric}.{field}"].astype(float) * METRICS[metric].scale).to_numpy("float32")


def _error_bar(rows: pd.DataFrame, metric: str) -> dict[str, object]:
    """95% CI bars (none where an experiment has one completed cycle); written once when every bar is
    symmetric (within float32 rounding), else high and low arms apart."""
    mean = rows[f"{metric}.mean"].astype(float)
    scale = METRICS[metric].scale
    plus = ((rows[f"{metric}.ci95_high"].astype(float) - mean) * scale).fillna(0).to_numpy("float32")
    minus = ((mean - rows[f"{metric}.ci95_low"].astype(float)) * scale).fillna(0).to_numpy("float32")
    if np.allclose(plus, minus, rtol=1e-5, atol=0):
        return {"type": "data", "symmetric": True, "array": plus, "thickness": 1}
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "thickness": 1}


def _colour(index: int) -> str:
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
    return palette[index % len(palette)]
