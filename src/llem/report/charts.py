"""Pareto fronts of the experiments' means (non-dominated ones highlighted) and the effect of each swept
factor (each figure against the factor's levels, one line per combination of the other factors),
with 95% CI error bars."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llem.report.data import ENERGY, METRICS, THROUGHPUT, ReportData, factor_name
from llem.results.compare import pareto_front

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
    minimize = [m for m in (x, y) if METRICS[m][2]]
    maximize = [m for m in (x, y) if not METRICS[m][2]]
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
    the other factors, at each experiment's mean with its 95% CI."""
    others = [f for f in data.factors if f != factor]
    table = data.experiments[data.experiments["status"] == "completed"]
    groups = list(table.groupby(others, sort=False, dropna=False)) if others else [((), table)]
    figure = make_subplots(rows=1, cols=len(metrics), subplot_titles=[_axis(m) for m in metrics])
    for g, (levels, rows) in enumerate(groups):
        levels = levels if isinstance(levels, tuple) else (levels,)
        name = ", ".join(f"{factor_name(f)}={v}" for f, v in zip(others, levels)) or "all"
        for col, metric in enumerate(metrics, start=1):
            figure.add_trace(
                go.Scatter(
                    x=rows[factor].astype(str).tolist(),
                    y=_scaled(rows, metric, "mean"),
                    error_y=_error_bar(rows, metric),
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1 and len(groups) <= MAX_LEGEND_GROUPS,
                    marker={"color": _colour(g)},
                    line={"color": _colour(g)},
                    hovertemplate=f"{name}<br>{factor_name(factor)}=%{{x}}<br>%{{y:.3g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    figure.update_xaxes(title_text=factor_name(factor), type="category")
    figure.update_layout(height=380, margin={"t": 40, "b": 50}, legend={"orientation": "h", "y": -0.25})
    return figure


def effect_metrics(data: ReportData) -> list[str]:
    """The figures drawn against each factor: energy per output token (when measured), throughput, TTFT p90."""
    return [m for m in (ENERGY, THROUGHPUT, "ttft_p90_s") if _has(data.experiments, m)]


def _has(table: pd.DataFrame, metric: str) -> bool:
    return f"{metric}.mean" in table and table[f"{metric}.mean"].notna().any()


def _axis(metric: str) -> str:
    return METRICS[metric][0]


def _scaled(rows: pd.DataFrame, metric: str, field: str) -> list[float]:
    return (rows[f"{metric}.{field}"].astype(float) * METRICS[metric][1]).tolist()


def _error_bar(rows: pd.DataFrame, metric: str) -> dict[str, object]:
    """Asymmetric 95% CI bars (none where an experiment has one completed cycle)."""
    mean = rows[f"{metric}.mean"].astype(float)
    scale = METRICS[metric][1]
    plus = ((rows[f"{metric}.ci95_high"].astype(float) - mean) * scale).fillna(0).tolist()
    minus = ((mean - rows[f"{metric}.ci95_low"].astype(float)) * scale).fillna(0).tolist()
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "thickness": 1}


def _colour(index: int) -> str:
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
    return palette[index % len(palette)]
