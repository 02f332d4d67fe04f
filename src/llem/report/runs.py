"""Per run: the telemetry time series (timeseries.parquet) with the baseline and the measurement window
marked, and the runs' warnings and errors."""

from __future__ import annotations

import datetime
from html import escape
from pathlib import Path

import altair as alt
import pandas as pd

from llem.report.data import ReportData
from llem.report.numbers import significant
from llem.results.schema import RunResult

# timeseries.parquet columns drawn: panel title with unit -> columns
POWER = "power (W)"
PANELS = {
    POWER: ["power_w"],
    "temperature (°C)": ["temperature_c"],
    "SM utilisation (%)": ["sm_utilisation_pct"],
    "clocks (MHz)": ["sm_clock_mhz", "memory_clock_mhz"],
    "memory used (MiB)": ["memory_used_mb"],
}
TRACE_NAMES = {"sm_clock_mhz": "SM clock", "memory_clock_mhz": "memory clock"}  # of panels with two lines
MAX_SERIES = 12  # runs whose telemetry is drawn; the others are named with their file
MAX_POINTS = 2000  # samples drawn per GPU (a 1 Hz series of over 33 min is thinned)
PANEL_WIDTH_PX, PANEL_HEIGHT_PX = 1000, 110
LINE_COLOUR = "#1f77b4"  # of one GPU's lines; several GPUs get a colour each


def series_runs(data: ReportData) -> list[tuple[str, RunResult, Path]]:
    """``(run label, result, timeseries file)`` of each completed run that recorded telemetry."""
    found = []
    labels = data.runs.set_index("job_dir")["run_label"]
    for job_dir, result in data.results.items():
        series = result.telemetry.timeseries
        if series is not None and (Path(job_dir) / series.file).is_file():
            found.append((str(labels[job_dir]), result, Path(job_dir) / series.file))
    return found


def telemetry_chart(result: RunResult, path: Path) -> alt.VConcatChart:
    """One panel per recorded quantity (one line per GPU, the SM and memory clocks sharing a panel) against
    seconds from the series' start, the energy window shaded in every panel, the idle baseline as a
    dashed line on the power panel (and shaded when it was measured inside the series). A column the file
    lacks (clocks in older files) or that holds no reading is left out. Past :data:`MAX_POINTS` samples a
    GPU, every k-th is drawn and the x axis says so. A file with no reading to draw raises ValueError."""
    table = pd.read_parquet(path)
    panels = {title: [c for c in lines if c in table and table[c].notna().any()] for title, lines in PANELS.items()}
    panels = {title: lines for title, lines in panels.items() if lines}
    if not panels:
        raise ValueError(f"no reading of {', '.join(c for lines in PANELS.values() for c in lines)} in it")
    origin = float(table["timestamp_s"].min())
    samples, step = _thinned(table, [c for lines in panels.values() for c in lines], origin)
    several_gpus = samples["gpu"].nunique() > 1
    last_s = float(samples["t"].max())
    start, end = _window(result)
    bands = [_band("measured", start - origin, end - origin, last_s, "#2ca02c")]
    baseline = result.energy.baseline
    if baseline is not None and baseline.measured_at and baseline.duration_s:
        begin = pd.Timestamp(baseline.measured_at).timestamp() - origin
        bands.append(_band("baseline", begin, begin + baseline.duration_s, last_s, "#7f7f7f"))
    bands = [band for band in bands if band is not None]
    when = datetime.datetime.fromtimestamp(origin, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    x_title = f"seconds from {when}" + (f" (one sample in {step} drawn)" if step > 1 else "")
    x_scale = alt.Scale(domain=[0, last_s], nice=False)
    shaded = _bands(bands, x_scale) if bands else []
    charts = []
    for index, (title, lines) in enumerate(panels.items()):
        last = index == len(panels) - 1
        x = alt.X("t:Q", title=x_title if last else None, scale=x_scale)
        layers = [*(shaded if index == 0 else shaded[:1]), _lines(lines, x, several_gpus)]  # named once, on top
        if title == POWER and baseline is not None and baseline.power_w is not None:
            layers += _baseline_rule(baseline.power_w)
        charts.append(alt.layer(*layers, title=title, width=PANEL_WIDTH_PX, height=PANEL_HEIGHT_PX))
    legends = alt.Resolve(legend=alt.LegendResolveMap(strokeDash="independent"))  # clocks' dashes: by their panel
    return alt.vconcat(*charts, data=samples, spacing=12, resolve=legends)


def _band(label: str, start_s: float, end_s: float, last_s: float, colour: str) -> dict[str, object] | None:
    """A shaded span of the series (seconds from its start), cut to the drawn 0 to ``last_s``; None when
    it lies wholly outside."""
    start_s, end_s = max(start_s, 0.0), min(end_s, last_s)
    return {"band": label, "start": start_s, "end": end_s, "colour": colour} if start_s < end_s else None


def _thinned(table: pd.DataFrame, columns: list[str], origin: float) -> tuple[pd.DataFrame, int]:
    """The samples to draw and the step between them (1: all). ``t``: seconds from ``origin``; ``gpu``:
    ``GPU n``; the drawn columns to 4 significant digits, those of :data:`TRACE_NAMES` under those names."""
    per_gpu = int(table.groupby("gpu_index").size().max())
    step = max(1, -(-per_gpu // MAX_POINTS))
    rows = table[table.groupby("gpu_index").cumcount() % step == 0]
    samples = pd.DataFrame(
        {"t": (rows["timestamp_s"] - origin).round(2), "gpu": "GPU " + rows["gpu_index"].astype(str)}
    )
    for column in columns:
        samples[TRACE_NAMES.get(column, column)] = [significant(v) for v in rows[column].astype(float)]
    return samples.reset_index(drop=True), step


def _lines(columns: list[str], x: alt.X, several_gpus: bool) -> alt.Chart:
    """A quantity's lines (one per GPU); two quantities share a panel with a dash for each."""
    colour = {"color": alt.Color("gpu:N", title=None, legend=alt.Legend(orient="top"))} if several_gpus else {}
    if len(columns) == 1:
        y = alt.Y(f"{columns[0]}:Q", title=None, scale=alt.Scale(zero=columns[0] == "power_w"))
        return alt.Chart().mark_line(color=LINE_COLOUR).encode(x=x, y=y, detail="gpu:N", **colour)
    names = [TRACE_NAMES[c] for c in columns]  # :func:`_thinned` names these columns so
    dashes = alt.Scale(domain=names, range=[[1, 0], [3, 3]][: len(names)])
    return (
        alt.Chart()
        .transform_fold(names, as_=["quantity", "value"])
        .mark_line(color=LINE_COLOUR)
        .encode(
            x=x,
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            detail="gpu:N",
            strokeDash=alt.StrokeDash("quantity:N", title=None, scale=dashes, legend=alt.Legend(orient="top")),
            **colour,
        )
    )


def _bands(bands: list[dict[str, object]], x_scale: alt.Scale) -> list[alt.Chart]:
    """The measurement window (and the idle baseline's) shaded across a panel, and their names at its top."""
    rows = alt.Chart(alt.Data(values=bands))
    x, x2 = alt.X("start:Q", scale=x_scale, title=None), alt.X2("end:Q")
    # fill, not color: the GPUs' legend keeps its line symbols
    shade = rows.mark_rect(opacity=0.15).encode(x=x, x2=x2, fill=alt.Fill("colour:N", scale=None))
    label = rows.mark_text(align="left", baseline="top", dx=2, dy=2, y=0).encode(x=x, text="band:N")
    return [shade, label]


def _baseline_rule(power_w: float) -> list[alt.Chart]:
    """The idle baseline power as a dashed line, labelled."""
    line = alt.Chart(alt.Data(values=[{"w": power_w, "text": f"idle baseline {power_w:.0f} W"}]))
    rule = line.mark_rule(strokeDash=[4, 4], color="#444").encode(y="w:Q")
    text = line.mark_text(align="right", baseline="bottom", dy=-2, x="width").encode(y="w:Q", text="text:N")
    return [rule, text]


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
