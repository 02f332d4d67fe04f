"""report.html in a real headless browser (Debian's chromium; skipped, with the reason, where it is absent):
it loads from file:// with no console message, every chart is drawn by vega-embed, every section is there,
and a screenshot is kept as the test's artefact."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from llem.report import build_report
from tests.fakes.results_tree import make_study, make_sweep

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SECTION_IDS = ("header", "experiments", "pareto", "effects", "significance", "runs", "warnings")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
)


@dataclass
class Rendered:
    dom: str  # the document after its scripts ran
    console: list[str]  # every console message (vega writes none when all is well)
    screenshot: Path


def chromium(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
    """Headless chromium on a page; ``--no-sandbox`` as root (containers), no network needed."""
    sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
    command = [CHROMIUM, "--headless", "--disable-gpu", *sandbox, "--virtual-time-budget=10000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=True)


def render(report: Path, screenshot: Path) -> Rendered:
    """Load ``report`` from file://, return its rendered DOM and console messages, save a screenshot."""
    url = report.resolve().as_uri()
    dumped = chromium("--enable-logging=stderr", "--v=0", "--dump-dom", url)
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]
    chromium(f"--screenshot={screenshot}", "--window-size=1280,2400", "--hide-scrollbars", url)
    print(f"report screenshot: {screenshot}")
    return Rendered(dumped.stdout, console, screenshot)


def assert_complete(rendered: Rendered, source_html: str) -> None:
    """No console message, every chart of the page drawn (an SVG with its marks), every section there, a
    screenshot."""
    assert rendered.console == [], rendered.console
    figures = source_html.count("vegaEmbed('#chart-")
    assert figures > 0
    charts = re.findall(r'<div id="chart-\d+" class="([^"]*)"[^>]*>(.*?)</svg>', rendered.dom, re.S)
    assert len(charts) == figures, [classes for classes, _ in charts]
    for classes, drawn in charts:
        assert "vega-embed" in classes and 'role="graphics-symbol"' in drawn, classes  # marks drawn in it
    for name in SECTION_IDS:
        assert f'id="{name}"' in rendered.dom, name
    assert rendered.screenshot.stat().st_size > 10_000


@needs_chromium
def test_report_renders_in_headless_chromium(tmp_path):
    study = make_study(
        tmp_path, factors={"dtype": ["float16", "bfloat16"], "transformers.batch_size": [1, 4]}, failed=[(3, 0)]
    )
    report = build_report([study])
    assert_complete(render(report, tmp_path / "report.png"), report.read_text())


@needs_chromium
def test_a_sweep_of_one_cycle_each_renders_without_a_console_message(tmp_path):
    sweep = make_sweep(tmp_path, factors={"dtype": ["float16", "bfloat16"], "transformers.batch_size": [1, 4]})
    report = build_report([sweep])  # no CI anywhere: no error bars to draw
    assert_complete(render(report, tmp_path / "sweep.png"), report.read_text())
