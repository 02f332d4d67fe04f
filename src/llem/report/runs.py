"""Per run: the telemetry time series (timeseries.parquet) with the baseline and the measurement window
marked, and the runs' warnings and errors."""

from __future__ import annotations

import datetime
from html import escape
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llem.report.data import ReportData
from llem.results.schema import RunResult

# timeseries.parquet columns drawn: column -> panel title with unit
PANELS = {
    "power_w": "power (W)",
    "temperature_c": "temperature (°C)",
    "sm_utilisation_pct": "SM utilisation (%)",
    "memory_used_mb": "memory used (MiB)",
}
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
    """One panel per recorded column (one line per GPU), the energy window shaded, the idle baseline
    as a dashed line on the power panel (and shaded when it was measured inside the series)."""
    table = pd.read_parquet(path)
    panels = [c for c in PANELS if c in table and table[c].notna().any()]
    figure = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, subplot_titles=[PANELS[c] for c in panels])
    times = pd.to_datetime(table["timestamp_s"], unit="s")
    for row, column in enumerate(panels, start=1):
        for gpu, rows in table.groupby("gpu_index"):
            figure.add_trace(
                go.Scatter(x=times[rows.index], y=rows[column], mode="lines", name=f"GPU {gpu}", showlegend=row == 1),
                row=row,
                col=1,
            )
    start, end = _window(result)
    for row in range(1, len(panels) + 1):
        note = {"annotation_text": "measured"} if row == 1 else {}
        figure.add_vrect(x0=start, x1=end, fillcolor="#2ca02c", opacity=0.15, line_width=0, row=row, col=1, **note)
    baseline = result.energy.baseline
    if baseline is not None and baseline.power_w is not None and "power_w" in panels:
        figure.add_hline(
            y=baseline.power_w,
            line_dash="dash",
            annotation_text=f"idle baseline {baseline.power_w:.0f} W",
            row=1,
            col=1,
        )
        if baseline.measured_at and baseline.duration_s:
            begin = pd.Timestamp(baseline.measured_at).tz_localize(None)
            if times.min() <= begin <= times.max():
                stop = begin + pd.Timedelta(seconds=baseline.duration_s)
                figure.add_vrect(
                    x0=begin, x1=stop, fillcolor="#7f7f7f", opacity=0.15, line_width=0, annotation_text="baseline"
                )
    figure.update_layout(
        height=140 + 150 * len(panels), margin={"t": 40, "b": 30}, showlegend=table["gpu_index"].nunique() > 1
    )
    return figure


def unseen_series_html(hidden: list[tuple[str, RunResult, Path]]) -> str:
    """The runs whose telemetry is not drawn, with their files."""
    if not hidden:
        return ""
    items = "".join(f"<li>{escape(label)}: <code>{escape(str(path))}</code></li>" for label, _, path in hidden)
    return f"<details><summary>{len(hidden)} more run(s) with telemetry, not drawn</summary><ul>{items}</ul></details>"


def run_notes_html(data: ReportData) -> str:
    """Every run with a warning or an error, with them; the count of the others."""
    items = []
    for _, run in data.runs.iterrows():
        result = data.results.get(run["job_dir"])
        warnings = result.warnings if result else []
        error = run["error"] if isinstance(run["error"], str) else None
        if not warnings and not error:
            continue
        lines = "".join(f"<li>{escape(w)}</li>" for w in warnings)
        if error:
            lines += f"<li class='error'>{escape(str(run['status']))}: {escape(error)}</li>"
        items.append(
            f"<li><b>{escape(run['run_label'])}</b> <code>{escape(run['job_dir'])}</code><ul>{lines}</ul></li>"
        )
    quiet = len(data.runs) - len(items)
    text = f"<p>{quiet} of {len(data.runs)} run(s) had no warning and no error.</p>"
    return text + (f"<ul class='runs'>{''.join(items)}</ul>" if items else "")


def _window(result: RunResult) -> tuple[datetime.datetime, datetime.datetime]:
    """The energy window (UTC, naive), else the inference timestamps."""
    window = result.energy.window
    if window is not None:
        return _utc(window.start_unix_s), _utc(window.end_unix_s)
    stamps = result.timestamps
    return pd.Timestamp(stamps.inference_start).tz_localize(None), pd.Timestamp(stamps.inference_end).tz_localize(None)


def _utc(unix_s: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(unix_s, datetime.timezone.utc).replace(tzinfo=None)
