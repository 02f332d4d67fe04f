"""The experiments table: one row per experiment, factors by name, mean (95% CI) of each figure, status
and reason; a Vega-Lite chart of text columns whose "sort by" select orders the rows by any figure (best
first). The rows are written once: each carries its rank in every order, and Vega-Lite picks the chosen
order's rank (a calculate transform) and numbers the rows by it (a window transform)."""

from __future__ import annotations

import json
import math
import re
from html import escape

import altair as alt
import pandas as pd

from llem.report.data import ReportData, factor_name
from llem.results.figures import CLIPPED, METRICS, interval

ROW_PX = 22  # height of a row, pixels
# Widths of a character, pixels, at the table's 12 px (wide fonts: DejaVu Sans): of a cell, of a cell's
# punctuation or space, of a header (bold)
CHAR_PX, NARROW_CHAR_PX, HEADER_CHAR_PX = 7.7, 4.0, 8.0
NARROW_CHARS = frozenset(" ,.:;()'!|")
HEADER_LINE_CHARS = 16  # a header's lines are at least this long (in a column of short cells)
PAD_PX = 8  # space either side of a column's text, pixels
MAX_REFUSED = 20  # configurations a planner refused listed below the table; the others are counted
REASON_CHARS = 60  # longer reasons are cut in the table and given whole below it
WORD_END = re.compile(r"(?<=[ .])")  # where a header may break
RUN_ORDER = "run order"
SORT_PARAM = "sort_by"
BAND_COLOR, HEADER_COLOR = "#f2f5f9", "#2a3f5f"
FONT = "system-ui, sans-serif"  # the page's own


def experiments_chart(data: ReportData) -> alt.HConcatChart:
    """The sortable table of :attr:`ReportData.experiments`: one text column per table column, headed by
    its name; rows in run order until the "sort by" select (Vega-Lite's own binding) names another."""
    columns = _columns(data)
    orders = _orders(data)
    rows = [{"i": position} for position in range(len(data.experiments))]
    for number, texts in enumerate(columns.values()):
        for row, text in zip(rows, texts):
            row[f"c{number}"] = text
    for number, ranks in enumerate(orders.values()):
        for position, rank in ranks.items():
            rows[position][f"k{number}"] = rank
    sort_by = alt.VariableParameter(
        name=SORT_PARAM,
        value=RUN_ORDER,
        bind=alt.BindRadioSelect(input="select", options=[RUN_ORDER, *orders], name="sort by "),
    )
    widths = {name: _width(name, texts) for name, texts in columns.items()}
    lines = {name: _wrap(name, int(width / HEADER_CHAR_PX)) for name, width in widths.items()}
    header_lines = max(len(wrapped) for wrapped in lines.values())
    views = [
        _column(f"c{number}", [""] * (header_lines - len(lines[name])) + lines[name], widths[name] + 2 * PAD_PX)
        for number, name in enumerate(columns)
    ]
    return alt.HConcatChart(  # in one step: each of Altair's chained methods copies the whole chart
        hconcat=views,
        data=alt.Data(values=rows),
        params=[sort_by],
        transform=[
            alt.CalculateTransform(calculate=_sort_key(list(orders)), **{"as": "key"}),
            alt.WindowTransform(
                window=[alt.WindowFieldDef(op="row_number", **{"as": "row"})],
                sort=[alt.SortField("key"), alt.SortField("i")],
            ),
        ],
        spacing=0,
        config=alt.Config(
            view=alt.ViewConfig(stroke=None),
            text=alt.MarkConfig(fontSize=12, font=FONT),
            title=alt.TitleConfig(fontSize=12, font=FONT, color=HEADER_COLOR, anchor="start", dx=PAD_PX),
        ),
    )


def _columns(data: ReportData) -> dict[str, list[str]]:
    """Column name -> its cells' text, in run order: study (when several), id, factors, runs done, status,
    each figure any experiment has as "mean (low to high)", and the reason when any experiment has one."""
    table = data.experiments
    columns: dict[str, list[str]] = {}
    if data.several_sources:
        columns["study"] = [_text(folder) for folder in table["folder"]]
    columns["id"] = [_text(i) for i in table["experiment_id"]]
    columns.update({factor_name(f): [_text(v) for v in table[f]] for f in data.factors if f in table})
    columns["runs done"] = [f"{n}/{total}" for n, total in zip(table["n"], table["n_runs"])]
    columns["status"] = [_text(status) for status in table["status"]]
    for metric in data.shown_metrics:
        columns[METRICS[metric].label] = [interval(row, metric, to=" to ", missing="") for _, row in table.iterrows()]
    reasons = [_short(e) for e in table["error"]]
    if any(reasons):
        columns["reason"] = reasons
    return columns


def _orders(data: ReportData) -> dict[str, dict[int, int]]:
    """Menu entry ("output tok/s, highest first") -> each experiment's rank (0 is best) by that figure's mean,
    keyed by its position in run order; experiments without the figure have no rank."""
    table = data.experiments.reset_index(drop=True)
    orders = {}
    for metric in data.shown_metrics:
        label, lower_is_better = METRICS[metric].label, METRICS[metric].lower_is_better
        ranked = table[f"{metric}.mean"].dropna().sort_values(ascending=lower_is_better, kind="stable")
        orders[f"{label}, {'lowest' if lower_is_better else 'highest'} first"] = {
            int(position): rank for rank, position in enumerate(ranked.index)
        }
    return orders


def _sort_key(entries: list[str]) -> str:
    """A Vega expression: the rank of the row in the order the select names (``k0``, ``k1`` ... by entry),
    past every ranked row where the row has no rank (missing figures last); in run order, 0."""
    key = "0"
    for number, entry in reversed(list(enumerate(entries))):
        field = f"datum.k{number}"
        key = f"{SORT_PARAM} === {json.dumps(entry)} ? (isValid({field}) ? {field} : 1e9) : {key}"
    return key


def _width(name: str, texts: list[str]) -> int:
    """A column's text width in pixels: its widest cell, or its header's when that is wider (the header's
    longest word, and lines of :data:`HEADER_LINE_CHARS` where the header is that long)."""
    longest_word = max(len(word) for word in WORD_END.split(name))
    header_chars = max(longest_word, min(len(name), HEADER_LINE_CHARS))
    widest = max((sum(NARROW_CHAR_PX if c in NARROW_CHARS else CHAR_PX for c in text) for text in texts), default=0)
    return math.ceil(max(widest, HEADER_CHAR_PX * header_chars))


def _wrap(header: str, chars: int) -> list[str]:
    """``header`` in lines of at most ``chars`` characters (longer words alone), broken after a space or a dot
    (``transformers.batch_size`` -> ``transformers.``, ``batch_size``)."""
    lines = [""]
    for word in WORD_END.split(header):
        if lines[-1] and len(lines[-1] + word) > chars:
            lines.append("")
        lines[-1] += word
    return [line.strip() for line in lines]


def _column(field: str, header: list[str], width: int) -> alt.LayerChart:
    """One column: its header as the title (one line per item), its cells as left-aligned text on every
    other row's light band, at the row's position (``row``, 1 at the top)."""
    rows = alt.Y("row:O", axis=None, scale=alt.Scale(paddingInner=0, paddingOuter=0))
    band = alt.Chart().mark_rect(color=BAND_COLOR, aria=False).encode(y=rows).transform_filter("datum.row % 2 === 0")
    text = alt.Chart().mark_text(align="left", baseline="middle", x=PAD_PX).encode(y=rows, text=f"{field}:N")
    return alt.layer(band, text, title=alt.Title(header), width=width, height=alt.Step(ROW_PX))


def notes_html(data: ReportData) -> str:
    """What the figures are; the experiments with no completed run, each with its status and whole reason;
    the configurations a study's planner refused, with the reasons."""
    notes = (
        "<p>Mean over an experiment's completed cycles (95% CI: low to high); "
        f"{CLIPPED} after a low bound clipped at 0: the cycles spread too widely for their number (unreliable).</p>"
    )
    failed = data.experiments[data.experiments["status"] != "completed"]
    if failed.empty:
        notes += "<p>Every experiment has at least one completed run.</p>"
    else:
        items = "".join(
            f"<li><b>{escape(row['label'])}</b> ({escape(str(row['status']))}): "
            f"{escape(_text(row['error']) or 'no reason recorded')}</li>"
            for _, row in failed.iterrows()
        )
        notes += f"<p>{len(failed)} experiment(s) without a completed run:</p><ul>{items}</ul>"
    if data.not_run:
        several = data.several_sources
        items = "".join(
            f"<li><b>{escape(f'{folder}: ' if several else '')}{escape(configuration)}</b>: {escape(reason)}</li>"
            for folder, configuration, reason in data.not_run[:MAX_REFUSED]
        )
        if len(data.not_run) > MAX_REFUSED:
            items += f"<li>{len(data.not_run) - MAX_REFUSED} more: each study's skipped.json lists them</li>"
        notes += (
            f"<p>{len(data.not_run)} configuration(s) not run, refused when the study was planned:</p><ul>{items}</ul>"
        )
    return notes


def _text(value: object) -> str:
    """A cell's text; ``""`` for a missing value (None, NaN, pandas' NA)."""
    return "" if value is None or pd.isna(value) else str(value)


def _short(reason: object) -> str:
    text = _text(reason)
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"
