"""End to end on llem-tiny: `llem run` of a 2 x 2 study with 3 cycles prints the ranked table and writes a
report that renders in headless chromium with every section; `llem report` on a `-m` sweep folder, and on
the study and another together (llem's own writers: tests/fakes/results_tree.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fakes.results_tree import make_study, make_sweep
from tests.test_report_browser import assert_complete, needs_chromium, render
from tests.test_study_run import llem, only_study_dir, write_study

FACTORS = {"dtype": ["float32", "bfloat16"], "pytorch.batch_size": [1, 2]}


@pytest.fixture(scope="module")
def study_run(tiny_model_path: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The study folder and what `llem run` printed."""
    root = tmp_path_factory.mktemp("e2e")
    study = write_study(root, sweep=FACTORS, study_execution={"n_cycles": 3, "experiment_order": "interleave"})
    # inline: the 12 runs share one process (the process runner is tested elsewhere; here it would only
    # add a torch import per run)
    proc = llem("run", str(study), "--output", str(root / "out"), "--runner", "inline", "--no-gaps", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return only_study_dir(root / "out"), proc.stdout


@needs_chromium
def test_study_prints_the_ranking_and_its_report_renders(study_run, tmp_path):
    folder, printed = study_run
    report = folder / "report.html"
    assert f"report: {report}" in printed.replace("\n", "")
    assert "experiments by output tokens per second" in printed and "batch_size" in printed
    html = report.read_text()
    assert html.count("vegaEmbed('#chart-") == 1 + 2 + 2  # table, throughput against 2 latencies, 2 factors
    assert "No energy figure in 12 of 12 runs: not measured" in html
    assert_complete(render(report, tmp_path / "study.png"), html)


def test_llem_report_on_a_sweep_and_on_two_studies(study_run, tmp_path):
    sweep = make_sweep(tmp_path / "sweep", factors={"dtype": ["float16", "bfloat16"]}, energy=False)
    made = llem("report", str(sweep), cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"report: {sweep / 'report.html'}" in made.stdout
    assert "dtype=bfloat16" in (sweep / "report.html").read_text()

    other = make_study(tmp_path / "other", factors={"dtype": ["float16", "bfloat16"]}, energy=False, name="other")
    both = llem("report", str(study_run[0]), str(other), "--output", str(tmp_path / "both.html"), cwd=tmp_path)
    assert both.returncode == 0, both.stdout + both.stderr
    html = (tmp_path / "both.html").read_text()
    assert "<title>llem report: s vs other</title>" in html
    assert re.search(r"other: [^<]*dtype=bfloat16", html) and re.search(r"s: [^<]*batch_size=2", html)
