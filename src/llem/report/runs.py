"""Per run: the telemetry time series (timeseries.parquet) with the baseline and the measurement window
marked, and the runs' warnings and errors."""

from __future__ import annotations

import datetime
import itertools
from html import escape
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from llem.report.data import ReportData
from llem.results.schema import RunResult

# timeseries.parquet columns drawn: panel title with unit -> {column: line dash}; power stays first
PANELS = {
    "power (W)": {"power_w": "solid"},
    "temperature (°C)": {"temperature_c": "solid"},
    "SM utilisation (%)": {"sm_utilisation_pct": "solid"},
    "clocks (MHz): SM solid, memory dotted": {"sm_clock_mhz": "solid", "memory_clock_mhz": "dot"},
    "memory used (MiB)": {"memory_used_mb": "solid"},
}
TRACE_NAMES = {"sm_clock_mhz": "SM clock", "memory_clock_mhz": "memory clock"}  # of panels with two lines
MAX_SERIES = 12  # runs whose telemetry is drawn; the others are named with their file


def series_runs(data: ReportData) -> list[tuple[str, RunResult, Path]]:
    """``(run label, result, timeseries file)`` of each completed run that recorded telemetry."""
    found = []
    labels = data.runs.set_index("job_dir")["run_label"]
    for job_dir, result in data.results.items():
        series = result.telemetry.timeseries
        if series is not None and (Path(job_dir) / series.file).is_file():
            found.append((str(labels[job_dir]), result, Path(job_dir) / series.file))
    return found


def telemetry_figure(result: RunResult, path: Path) -> go.Figure:
    """One panel per recorded quantity (one line per GPU, the SM and memory clocks sharing a panel) against
    seconds from the series' start, the energy window shaded across the panels, the idle baseline as a
    dashed line on the power panel (and shaded when it was measured inside the series). A column the file
    lacks (clocks in older files) or that holds no reading is left out."""
    table = pd.read_parquet(path)
    panels = {
        title: {c: dash for c, dash in lines.items() if c in table and table[c].notna().any()}
        for title, lines in PANELS.items()
    }
    panels = {title: lines for title, lines in panels.items() if lines}
    figure = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, subplot_titles=list(panels))
    origin = float(table["timestamp_s"].min())
    colours = dict(zip(sorted(table["gpu_index"].unique()), itertools.cycle(qualitative.Plotly)))
    for row, lines in enumerate(panels.values(), start=1):
        for column, dash in lines.items():
            for gpu, rows in table.groupby("gpu_index"):
                name = f"GPU {gpu}" + (f" {TRACE_NAMES[column]}" if len(lines) > 1 else "")
                figure.add_trace(
                    go.Scatter(
                        x=(rows["timestamp_s"] - origin).to_numpy("float32"),
                        y=rows[column].to_numpy("float32"),
                        mode="lines",
                        name=name,
                        line={"color": colours[gpu], "dash": dash},
                        legendgroup=f"GPU {gpu}",
                        showlegend=row == 1,
                    ),
                    row=row,
                    col=1,
                )
    start, end = _window(result)
    _shade(figure, start - origin, end - origin, "measured", "#2ca02c")
    baseline = result.energy.baseline
    if baseline is not None and baseline.power_w is not None and "power (W)" in panels:
        label = f"idle baseline {baseline.power_w:.0f} W"
        figure.add_hline(y=baseline.power_w, line_dash="dash", annotation_text=label, row=1, col=1)
        if baseline.measured_at and baseline.duration_s:
            begin = pd.Timestamp(baseline.measured_at).timestamp() - origin
            if 0 <= begin <= float(table["timestamp_s"].max()) - origin:
                _shade(figure, begin, begin + baseline.duration_s, "baseline", "#7f7f7f")
    when = datetime.datetime.fromtimestamp(origin, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    figure.update_xaxes(title_text=f"seconds from {when}", row=len(panels), col=1)
    figure.update_layout(
        height=140 + 150 * len(panels), margin={"t": 40, "b": 40}, showlegend=table["gpu_index"].nunique() > 1
    )
    return figure


def _shade(figure: go.Figure, start_s: float, end_s: float, label: str, colour: str) -> None:
    """A band from ``start_s`` to ``end_s`` across every panel (the x axes are shared), named at its top."""
    figure.add_shape(
        type="rect", xref="x", yref="paper", x0=start_s, x1=end_s, y0=0, y1=1,
        fillcolor=colour, opacity=0.15, line_width=0, layer="below",
    )  # fmt: skip
    figure.add_annotation(x=start_s, y=1, xref="x", yref="paper", text=label, showarrow=False, xanchor="left")


def unseen_series_html(hidden: list[tuple[str, RunResult, Path]]) -> str:
    """The runs whose telemetry is not drawn, with their files."""
    if not hidden:
        return ""
    items = "".join(f"<li>{escape(label)}: <code>{escape(str(path))}</code></li>" for label, _, path in hidden)
    return f"<details><summary>{len(hidden)} more run(s) with telemetry, not drawn</summary><ul>{items}</ul></details>"


def run_warnings_html(result: RunResult) -> str:
    """A drawn run's warnings (they are also in the warnings section, grouped by kind)."""
    if not result.warnings:
        return "<p>No measurement warning.</p>"
    return "<ul>" + "".join(f"<li>{escape(w)}</li>" for w in result.warnings) + "</ul>"


def errors_html(data: ReportData) -> str:
    """Every run that did not complete, or completed with a result.json that cannot be read, with its
    status and reason, and the count of the others."""
    unfinished = data.runs[~data.runs["readable"]]
    items = [
        f"<li><b>{escape(run['run_label'])}</b> ({escape(_status(run))}): "
        f"{escape(run['error'] if isinstance(run['error'], str) else 'no reason recorded')}</li>"
        for _, run in unfinished.iterrows()
    ]
    unreadable = int((unfinished["status"] == "completed").sum())
    text = f"<p>{len(data.runs) - len(items)} of {len(data.runs)} run(s) completed with a readable result"
    text += f"; {unreadable} completed but their result.json cannot be read.</p>" if unreadable else ".</p>"
    return text + (f"<ul>{''.join(items)}</ul>" if items else "")


def _status(run: pd.Series) -> str:
    return "completed, result unreadable" if run["status"] == "completed" else str(run["status"])


def _window(result: RunResult) -> tuple[float, float]:
    """Unix seconds of the energy window, else of the inference timestamps."""
    window = result.energy.window
    if window is not None:
        return window.start_unix_s, window.end_unix_s
    stamps = result.timestamps
    return pd.Timestamp(stamps.inference_start).timestamp(), pd.Timestamp(stamps.inference_end).timestamp()
