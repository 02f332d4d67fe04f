"""Pareto fronts of the experiments' means (non-dominated ones highlighted) and the effect of each swept
factor (each figure against the factor's levels, one line per combination of the other factors),
with 95% CI error bars, as Altair (Vega-Lite) charts."""

from __future__ import annotations

import altair as alt
import pandas as pd

from llem.report.data import ReportData, factor_name
from llem.report.numbers import significant
from llem.results.compare import pareto_front
from llem.results.figures import ENERGY, METRICS, THROUGHPUT

FRONT, OTHER = "Pareto front", "other"
FRONT_COLOUR, OTHER_COLOUR = "#d62728", "#8c9bab"
MAX_LEGEND_GROUPS = 12  # more lines than this: no legend and one colour; hovering names each line
PANEL_WIDTH_PX, PANEL_HEIGHT_PX = 320, 240  # one figure of an effect chart
ONE_COLOUR = "#1f77b4"  # of every line when they are too many to colour apart


def pareto_pairs(data: ReportData) -> list[tuple[str, str]]:
    """``(x, y)`` metric pairs to draw: energy per output token against throughput, TTFT p90 and ITL
    p50 when energy was measured, else throughput against the two latencies."""
    present = data.shown_metrics
    anchor = ENERGY if ENERGY in present else THROUGHPUT
    others = [m for m in (THROUGHPUT, "ttft_p90_s", "itl_p50_s") if m in present and m != anchor]
    return [(x, anchor) for x in others] if anchor in present else []


def pareto_chart(data: ReportData, x: str, y: str) -> alt.LayerChart:
    """The experiments' means of ``y`` against ``x`` with 95% CI bars; the non-dominated ones in red,
    joined by a dotted line; hovering a point gives its configuration and both figures."""
    table = data.experiments[data.experiments[f"{x}.mean"].notna() & data.experiments[f"{y}.mean"].notna()]
    minimize = [m for m in (x, y) if METRICS[m].lower_is_better]
    maximize = [m for m in (x, y) if not METRICS[m].lower_is_better]
    means = table[[f"{x}.mean", f"{y}.mean"]].set_axis([x, y], axis=1)
    on_front = pareto_front(means, minimize=minimize, maximize=maximize)
    points = pd.DataFrame(
        {
            "experiment": table["label"].astype(str),
            "set": [FRONT if front else OTHER for front in on_front],
            **_scaled(table, x, "x"),
            **_scaled(table, y, "y"),
        }
    )
    x_axis = alt.X("x:Q", title=_axis(x), scale=alt.Scale(zero=False))
    y_axis = alt.Y("y:Q", title=_axis(y), scale=alt.Scale(zero=False))
    colour = alt.Color(
        "set:N",
        title=None,
        scale=alt.Scale(domain=[FRONT, OTHER], range=[FRONT_COLOUR, OTHER_COLOUR]),
        legend=alt.Legend(orient="top"),
    )
    base = alt.Chart(points)
    with_ci = {axis: base.transform_filter(f"isValid(datum.{axis}_low)") for axis in ("x", "y")}
    x_bars = with_ci["x"].mark_rule(color=OTHER_COLOUR).encode(x="x_low:Q", x2="x_high:Q", y=y_axis)
    y_bars = with_ci["y"].mark_rule(color=OTHER_COLOUR).encode(x=x_axis, y="y_low:Q", y2="y_high:Q")
    front = (
        base.transform_filter(alt.datum.set == FRONT)
        .mark_line(strokeDash=[2, 3], color=FRONT_COLOUR)
        .encode(x=x_axis, y=y_axis, order="x:Q")
    )
    dots = base.mark_point(filled=True, size=70, opacity=1).encode(
        x=x_axis,
        y=y_axis,
        color=colour,
        tooltip=[
            alt.Tooltip("experiment:N"),
            alt.Tooltip("x:Q", title=_axis(x), format=".3~g"),
            alt.Tooltip("y:Q", title=_axis(y), format=".3~g"),
        ],
    )
    bars = [b for b, low in ((x_bars, "x_low"), (y_bars, "y_low")) if points[low].notna().any()]  # none at 1 cycle
    return alt.layer(*bars, front, dots).properties(width="container", height=380)


def effect_chart(data: ReportData, factor: str, metrics: list[str]) -> alt.FacetChart:
    """Each of ``metrics`` (a panel each, own y scale) against the levels of ``factor``: one line per
    combination of the other factors (and folder), at each experiment's mean with its 95% CI. Past
    :data:`MAX_LEGEND_GROUPS` lines they share one colour and no legend; hovering names each line."""
    others = (["folder"] if data.several_sources else []) + [f for f in data.factors if f != factor]
    table = data.experiments[data.experiments["status"] == "completed"]
    lines = [_group_name(others, row) for _, row in table.iterrows()] if others else ["all"] * len(table)
    levels = [None if pd.isna(v) else str(v) for v in table[factor]] if factor in table else [None] * len(table)
    order = {level: place for place, level in enumerate(_level_order(levels))}
    places = [order.get(level) for level in levels]
    points = pd.concat(
        [
            pd.DataFrame(
                {"figure": _axis(m), "level": levels, "place": places, "line": lines, **_scaled(table, m, "value")}
            )
            for m in metrics
        ],
        ignore_index=True,
    )
    points = points[points["level"].notna()]  # an experiment without the factor (another folder's) has no x
    many = len(set(lines)) > MAX_LEGEND_GROUPS
    legend = alt.Legend(orient="bottom", labelLimit=0, columns=1)  # labels whole: they differ at their ends
    colour = {} if many or not others else {"color": alt.Color("line:N", title=None, legend=legend)}
    # sorted by each level's place: Vega turns a sort list into an expression, which some text breaks
    x_axis = alt.X(
        "level:N", title=factor_name(factor), sort=alt.EncodingSortField("place", op="min"), axis=alt.Axis(labelAngle=0)
    )
    tooltip = [
        alt.Tooltip("line:N", title="other factors"),
        alt.Tooltip("level:N", title=factor_name(factor)),
        alt.Tooltip("value:Q", title="mean", format=".3~g"),
    ]
    base = alt.Chart().encode(x=x_axis, detail="line:N", **colour)
    line = base.mark_line(point=True, color=ONE_COLOUR).encode(
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)), tooltip=tooltip
    )
    bars = (
        base.transform_filter("isValid(datum.value_low)")
        .mark_rule(color=ONE_COLOUR)
        .encode(y="value_low:Q", y2="value_high:Q")
    )
    layers = [line, bars] if points["value_low"].notna().any() else [line]  # no bars at one cycle
    panel = alt.layer(*layers, data=points).properties(width=PANEL_WIDTH_PX, height=PANEL_HEIGHT_PX)
    return panel.facet(
        column=alt.Column("figure:N", title=None, sort=[_axis(m) for m in metrics], header=alt.Header(labelFontSize=13))
    ).resolve_scale(y="independent")


def effect_metrics(data: ReportData) -> list[str]:
    """The figures drawn against each factor: energy per output token (when measured), throughput, TTFT p90."""
    return [m for m in (ENERGY, THROUGHPUT, "ttft_p90_s") if m in data.shown_metrics]


def _group_name(columns: list[str], row: pd.Series) -> str:
    """``dtype=float16, batch_size=4``; a factor the experiment does not set is ``not set``."""
    return ", ".join(f"{factor_name(c)}={'not set' if pd.isna(row[c]) else row[c]}" for c in columns)


def _level_order(levels: list[str | None]) -> list[str]:
    """A factor's levels in numeric order when every one is a number, else in order of appearance."""
    distinct = list(dict.fromkeys(v for v in levels if v is not None))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def _axis(metric: str) -> str:
    return METRICS[metric].label


def _scaled(rows: pd.DataFrame, metric: str, name: str) -> dict[str, list[float | None]]:
    """``{name: means, name_low: CI lows, name_high: CI highs}`` in the metric's display unit, to 4
    significant digits (what a chart can show), ``None`` where missing (one completed cycle: no CI)."""
    scale = METRICS[metric].scale
    return {
        f"{name}{suffix}": [significant(v * scale) for v in rows[f"{metric}.{field}"].astype(float)]
        for suffix, field in (("", "mean"), ("_low", "ci95_low"), ("_high", "ci95_high"))
    }
