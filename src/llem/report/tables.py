"""The experiments table: one row per experiment, factors by name, mean (95% CI) of each figure, status
and reason; a plotly table whose menu sorts it by any figure (best first): each menu entry is plotly's own
restyle with the table's values in its order, so the values are written once per order (no script of llem's)."""

from __future__ import annotations

from html import escape

import pandas as pd
import plotly.graph_objects as go

from llem.report.data import ReportData, factor_name
from llem.report.numbers import mean_ci
from llem.results.figures import CLIPPED, METRICS

ROW_PX, HEADER_PX, MAX_HEIGHT_PX = 32, 100, 800  # pixels; a long row wraps onto a second line
REASON_CHARS = 90  # longer reasons are cut in the table and given whole below it


def experiments_figure(data: ReportData) -> go.Figure:
    """The sortable table of :attr:`ReportData.experiments`."""
    table = data.experiments
    shown = [m for m in METRICS if f"{m}.mean" in table and table[f"{m}.mean"].notna().any()]
    columns: dict[str, list[str]] = {}
    if data.several_sources:
        columns["study"] = table["folder"].astype(str).tolist()
    columns["id"] = table["experiment_id"].astype(str).tolist()
    columns.update({factor_name(f): table[f].astype(str).tolist() for f in data.factors if f in table})
    columns["runs done"] = [f"{n}/{total}" for n, total in zip(table["n"], table["n_runs"])]
    columns["status"] = table["status"].astype(str).tolist()
    labels = [METRICS[m].label for m in shown]
    columns.update({METRICS[m].label: [mean_ci(row, m) for _, row in table.iterrows()] for m in shown})
    reasons = [_short(e) for e in table["error"]]
    if any(reasons):
        columns["reason"] = reasons
    orders = {"run order": list(range(len(table)))}
    for metric in shown:
        label, lower_is_better = METRICS[metric].label, METRICS[metric].lower_is_better
        ranked = table[f"{metric}.mean"].sort_values(ascending=lower_is_better, na_position="last", kind="stable")
        orders[f"{label}, {'lowest' if lower_is_better else 'highest'} first"] = [
            table.index.get_loc(i) for i in ranked.index
        ]
    values = {name: [[col[i] for i in order] for col in columns.values()] for name, order in orders.items()}
    figure = go.Figure(
        go.Table(
            columnwidth=[3 if name == "reason" else 1.2 if name in labels else 1 for name in columns],
            header={
                "values": [f"<b>{escape(c).replace('.', '.<br>')}</b>" for c in columns],
                "align": "left",
                "fill_color": "#e8edf3",
            },
            cells={"values": values["run order"], "align": "left", "height": ROW_PX},
        )
    )
    buttons = [
        {"label": f"sort by {name}", "method": "restyle", "args": [{"cells.values": [v]}]} for name, v in values.items()
    ]
    figure.update_layout(
        updatemenus=[
            {"buttons": buttons, "x": 0, "y": 1.0, "xanchor": "left", "yanchor": "bottom", "direction": "down"}
        ],
        height=min(MAX_HEIGHT_PX, HEADER_PX + 50 + ROW_PX * len(table)),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure


def notes_html(data: ReportData) -> str:
    """What the figures are, and the experiments with no completed run, each with its status and whole reason."""
    notes = (
        "<p>Mean over an experiment's completed cycles (95% CI: low to high); "
        f"{CLIPPED} after a low bound clipped at 0: the cycles spread too widely for their number (unreliable).</p>"
    )
    failed = data.experiments[data.experiments["status"] != "completed"]
    if failed.empty:
        return notes + "<p>Every experiment has at least one completed run.</p>"
    items = "".join(
        f"<li><b>{escape(row['label'])}</b> ({escape(str(row['status']))}): "
        f"{escape(_text(row['error']) or 'no reason recorded')}</li>"
        for _, row in failed.iterrows()
    )
    return notes + f"<p>{len(failed)} experiment(s) without a completed run:</p><ul>{items}</ul>"


def _text(value: object) -> str:
    """A cell's text; ``""`` for a missing value."""
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _short(reason: object) -> str:
    text = _text(reason)
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"
