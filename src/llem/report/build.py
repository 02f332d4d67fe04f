"""``report.html``: one self-contained page (Vega-Lite charts, their scripts inline once, no network) of a
study, a ``-m`` sweep, a single run, or several of them compared.

Where it goes: ``<folder>/report.html`` when one folder is given, else ``./report.html``; ``output``
overrides both: a path ending in ``.html`` is the file, any other (an existing folder, a path ending
in a separator, a path without that suffix) is a folder with ``report.html`` in it; missing folders
are made.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from html import escape
from pathlib import Path

from rich.console import Console
from rich.markup import escape as rich_escape

from llem.errors import LlemError
from llem.report import charts, runs, tables
from llem.report.data import ReportData, factor_name, load_report_data
from llem.report.header import header_html
from llem.report.page import Page, vega_bundle
from llem.report.significance import baseline_key, significance_html
from llem.report.warnings_panel import warnings_html
from llem.results.collect import result_folder
from llem.results.io import write_text_atomic
from llem.results.schema import RunResult

REPORT_FILE = "report.html"
STYLE = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 1.5em 3em;color:#1d2733}
h1{margin-top:1em} h2{border-bottom:2px solid #d0d8e2;padding-bottom:.2em;margin-top:2em}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.3em 1em} dt{font-weight:600}
.notice{background:#fff4d6;border-left:4px solid #e0a100;padding:.6em 1em;font-weight:600}
table.data{border-collapse:collapse;font-size:.9em;width:100%} table.data td,table.data th{border:1px solid #d0d8e2;
padding:.3em .5em;text-align:left;vertical-align:top} tr.significant{background:#e9f6ec}
li.error,p.error{color:#b3261e} nav a{margin-right:1em} code{font-size:.85em}
.chart{width:100%;margin:.5em 0;overflow-x:auto} /* wider than the page: scrolled sideways */
.table-wide.vega-embed{display:flex;flex-direction:column;align-items:flex-start} /* the table: "sort by" on top */
.table-wide.vega-embed>svg{flex-shrink:0} .table-wide .vega-bindings{order:-1;padding:.3em 0}
"""
SECTIONS = {
    "experiments": "Experiments",
    "pareto": "Pareto fronts",
    "effects": "Effect of each swept factor",
    "significance": "Significance",
    "runs": "Per run",
    "warnings": "Warnings",
}


def build_report(paths: Sequence[Path], *, output: str | Path | None = None, baseline: str | None = None) -> Path:
    """Write the report of ``paths`` (study, sweep or run folders) and return its path; ``baseline``: an
    experiment id every other experiment is also tested against."""
    for path in paths:
        result_folder(path)  # a wrong path: its one-line error now, not after the bundle's making
    with ThreadPoolExecutor(max_workers=1) as pool:
        bundle = pool.submit(vega_bundle)  # vl-convert makes it outside the GIL while the results are read
        data = load_report_data(paths)
        baseline_id = baseline_key(data, baseline)
        page = Page()
        body = {
            "experiments": page.figure(tables.experiments_chart(data), "chart table-wide") + tables.notes_html(data),
            "pareto": _pareto(data, page),
            "effects": _effects(data, page),
            "significance": significance_html(data, baseline_id),
            "runs": _runs(data, page),
            "warnings": warnings_html(data),
        }
        script = f"<script>{bundle.result()}</script>"  # defines vegaEmbed for the charts below
    nav = "".join(f"<a href='#{key}'>{title}</a>" for key, title in SECTIONS.items())
    sections = "".join(f"<section id='{k}'><h2>{SECTIONS[k]}</h2>{html}</section>" for k, html in body.items())
    title = escape(" vs ".join(dict.fromkeys(data.runs["study"].astype(str))))
    document = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>llem report: {title}</title>"
        f"<style>{STYLE}</style>{script}</head><body><header id='header'>{header_html(data)}</header>"
        f"<nav>{nav}</nav>{sections}</body></html>"
    )
    target = report_path(output) if output else _default_output(paths)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, document)
    except OSError as err:
        raise LlemError(
            f"{target}: the report cannot be written ({err.strerror or err}); give --output a writable file or folder"
        ) from None
    return target


def report_path(output: str | Path) -> Path:
    """The file ``output`` names: itself when it ends in ``.html`` and is not a folder, else ``report.html``
    in it (``newdir/``, an existing folder, ``results``)."""
    text = os.fspath(output)
    target = Path(text)
    ends_in_separator = text.endswith(("/", os.sep))
    if ends_in_separator or target.is_dir() or target.suffix.lower() not in (".html", ".htm"):
        return target / REPORT_FILE
    return target


def write_report_quietly(paths: Sequence[Path], console: Console) -> Path | None:
    """:func:`build_report` with the default location; any failure is one warning line and None (a
    report that cannot be built never fails the study or sweep it describes)."""
    try:
        return build_report(paths)
    except Exception as err:  # noqa: BLE001  (any failure: the results themselves are safe on disk)
        console.print(
            f"[yellow]llem: warning: no report written: {rich_escape(str(err) or type(err).__name__)}[/]",
            soft_wrap=True,
        )
        return None


def _default_output(paths: Sequence[Path]) -> Path:
    if len(paths) == 1:
        return result_folder(paths[0]).path / REPORT_FILE
    return Path.cwd() / REPORT_FILE


def _pareto(data: ReportData, page: Page) -> str:
    pairs = charts.pareto_pairs(data)
    if not pairs:
        return "<p>No experiment has both a throughput and a latency or energy figure: no front to draw.</p>"
    note = (
        "" if data.energy_measured else "<p>Energy was not measured, so the fronts are throughput against latency.</p>"
    )
    intro = (
        "<p>Each point is an experiment's mean over its cycles, with 95% CI bars where it has 2 or more "
        "completed cycles; red: not dominated (no other experiment is better in one figure and at least as "
        "good in the other).</p>"
    )
    return note + intro + "".join(page.figure(charts.pareto_chart(data, x, y)) for x, y in pairs)


def _effects(data: ReportData, page: Page) -> str:
    if not data.factors:
        return "<p>No configuration key varies between the experiments: there is no factor to show.</p>"
    metrics = charts.effect_metrics(data)
    if not metrics:
        return "<p>No completed run: no figure to show against the factors.</p>"
    return "".join(
        f"<h3>{escape(factor_name(f))}</h3>" + page.figure(charts.effect_chart(data, f, metrics)) for f in data.factors
    )


def _runs(data: ReportData, page: Page) -> str:
    found = runs.series_runs(data)
    if found:
        drawn = "".join(
            f"<h3>{escape(label)}</h3>" + _telemetry(result, path, page) + runs.run_warnings_html(result)
            for label, result, path in found[: runs.MAX_SERIES]
        )
        telemetry = drawn + runs.unseen_series_html(found[runs.MAX_SERIES :])
    else:
        reasons = "; ".join(sorted({r.telemetry.reason or "not recorded" for r in data.results.values()}))
        telemetry = f"<p>No run recorded a telemetry time series ({escape(reasons or 'no completed run')}).</p>"
    return telemetry + "<h3>Runs that did not complete</h3>" + runs.errors_html(data)


def _telemetry(result: RunResult, path: Path, page: Page) -> str:
    """The run's telemetry plot, or a line naming its file when that cannot be read or drawn (damaged, or
    written in another shape); the rest of the report is written either way."""
    try:
        chart = runs.telemetry_chart(result, path)
    except (OSError, KeyError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        reason = f"no column {err}" if isinstance(err, KeyError) else str(err) or type(err).__name__
        named = f"Telemetry file <code>{escape(str(path))}</code>"
        return f"<p class='error'>{named} unreadable: {escape(reason, quote=False)}</p>"
    return page.figure(chart)
