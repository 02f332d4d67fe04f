"""The report's header: what was measured, where, with what, and how energy was obtained (stated first
when it is an estimate or was not measured)."""

from __future__ import annotations

import datetime
from html import escape
from pathlib import Path

from llem import __version__
from llem.errors import ConfigError
from llem.report.data import ReportData
from llem.results.io import read_json
from llem.results.schema import RunResult


def header_html(data: ReportData) -> str:
    """Title, energy notice, and a definition list of the studies, machines, engines and methods."""
    results = list(data.results.values())
    facts = {
        "results": _sources(data),
        "llem version": _joined(sorted({r.llem_version for r in results}) + [f"report by llem {__version__}"]),
        "date": _dates(data, results),
        "machine": _joined(sorted({_machine(r) for r in results})) or "no completed run",
        "engines": _joined(sorted({f"{r.engine.name} {r.engine.version or ''}".strip() for r in results}))
        or _joined(sorted(set(data.runs["engine"].dropna().astype(str)))),
        "energy": _joined(sorted({_energy_method(r) for r in results})) or "no completed run",
    }
    title = " vs ".join(dict.fromkeys(data.runs["study"].astype(str)))
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in facts.items())
    return f"<h1>llem report: {escape(title)}</h1>{energy_notice(results)}<dl class='facts'>{rows}</dl>"


def energy_notice(results: list[RunResult]) -> str:
    """A highlighted sentence when energy figures are estimates or were not measured (else empty)."""
    notes = []
    unmeasured = [r for r in results if r.energy.energy_j is None]
    estimated = [r for r in results if r.energy.energy_j is not None and not r.energy.measured]
    if unmeasured:
        reasons = _joined(sorted({r.energy.reason or "no reason recorded" for r in unmeasured}))
        notes.append(f"No energy figure in {len(unmeasured)} of {len(results)} runs: {reasons}.")
    if estimated:
        methods = _joined(sorted({r.energy.method for r in estimated}))
        notes.append(
            f"Energy in {len(estimated)} of {len(results)} runs is an estimate ({methods}), not a measurement."
        )
    return "".join(f"<p class='notice'>{n}</p>" for n in notes)


def _sources(data: ReportData) -> str:
    """Each folder: its name, kind, path and (studies) design hash."""
    items = []
    for source, group in data.runs.groupby("source", sort=False):
        kind = group["kind"].iloc[0]
        design = _design_hash(Path(source)) if kind == "study" else None
        hash_text = f", design hash <code>{escape(design)}</code>" if design else ""
        items.append(f"{escape(str(group['study'].iloc[0]))} ({kind}{hash_text}): <code>{escape(source)}</code>")
    return "<br>".join(items)


def _design_hash(study: Path) -> str | None:
    try:
        value = read_json(study / "manifest.json").get("study_design_hash")
    except (ConfigError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _dates(data: ReportData, results: list[RunResult]) -> str:
    """First and last run start (UTC), and when the report was written."""
    starts = sorted(r.timestamps.started_at for r in results)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    span = f"runs from {starts[0]} to {starts[-1]}; " if starts else ""
    return escape(f"{span}report written {now}")


def _machine(result: RunResult) -> str:
    """``host: CPU model; GPU model (driver D) x n``."""
    env = result.environment
    gpus = {f"{g.name} (driver {g.driver or 'unknown'})" for g in env.gpus}
    gpu_text = _joined(sorted(gpus)) if gpus else "no GPU"
    return f"{env.hostname}: {env.cpu_model}; {gpu_text}"


def _energy_method(result: RunResult) -> str:
    energy = result.energy
    if energy.energy_j is None:
        return "not measured"
    sampler = energy.sampler.chosen or energy.method
    return f"{energy.method} ({sampler})" + ("" if energy.measured else ", estimate")


def _joined(items: list[str]) -> str:
    return ", ".join(escape(i) for i in items)
