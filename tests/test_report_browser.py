"""report.html in a real headless browser (Debian's chromium; skipped, with the reason, where it is absent):
it loads from file:// with no console message, every chart is rendered by plotly, every section is there,
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
from llem.report.data import load_report_data
from tests.fakes.results_tree import make_study

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SECTION_IDS = ("header", "experiments", "pareto", "effects", "significance", "runs", "warnings")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
)


@dataclass
class Rendered:
    dom: str  # the document after its scripts ran
    console: list[str]  # every console message (plotly writes none when all is well)
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
    """No console message, every plotly figure of the page rendered, every section there, a screenshot."""
    assert rendered.console == [], rendered.console
    figures = source_html.count("Plotly.newPlot(")
    assert figures > 0
    plots = re.findall(r'<div id="[^"]+" class="([^"]*plotly-graph-div[^"]*)"', rendered.dom)
    assert len(plots) == figures and all("js-plotly-plot" in classes for classes in plots), plots
    assert rendered.dom.count('class="main-svg"') >= figures
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
def test_the_experiments_menu_sorts_the_table(tmp_path):
    study = make_study(tmp_path, factors={"dtype": ["float16", "bfloat16"], "transformers.batch_size": [1, 4]})
    report = build_report([study])
    experiments = load_report_data([study]).experiments
    first = experiments["experiment_id"].iloc[0]
    best = experiments.sort_values("output_tokens_per_s.mean", ascending=False)["experiment_id"].iloc[0]
    assert first != best
    html = report.read_text()
    click = (  # what choosing the menu entry does: plotly's restyle with the entry's arguments (test-only script)
        "<script>document.addEventListener('DOMContentLoaded', function () {"
        "var table = document.querySelector('#experiments .plotly-graph-div');"
        "var entry = table.layout.updatemenus[0].buttons.find(b => b.label.startsWith('sort by output tok/s'));"
        "Plotly.restyle(table, entry.args[0]); });</script></body>"
    )
    clicked = tmp_path / "clicked.html"
    clicked.write_text(html.replace("</body>", click))
    rendered = render(clicked, tmp_path / "clicked.png")
    assert rendered.console == [], rendered.console
    cells = re.search(r'id="experiments".*?id="pareto"', rendered.dom, re.S).group(0)
    assert cells.index(f">{best}<") < cells.index(f">{first}<")
