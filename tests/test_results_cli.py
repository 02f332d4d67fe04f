"""llem summarize, llem results (list, show, export) and the end of a -m sweep, run as a user runs them:
tables and files for studies, sweeps and runs; one ``llem:`` line and a non-zero exit for each mistake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf
from rich.console import Console

from llem.callbacks import SweepReport
from llem.results.collect import load_runs
from llem.results.summary import summarize_quietly
from tests.fakes.results_tree import make_single_run, make_study, make_sweep

FACTORS = {"dtype": ["float32", "bfloat16"], "transformers.batch_size": [1, 4]}


def llem(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "LLEM_USER_CONFIG": str(cwd / "no-user-config.yaml")}
    return subprocess.run(
        [sys.executable, "-m", "llem.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def assert_one_error_line(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("llem: "), proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A working folder whose outputs/ holds a study, a sweep with a failed job and a single run."""
    cwd = tmp_path_factory.mktemp("results")
    outputs = cwd / "outputs"
    make_study(outputs, factors=FACTORS, cycles=3, failed=[(3, None)], name="batching")
    make_sweep(outputs, factors={"dtype": ["float32", "bfloat16"]}, failed=[1])
    make_single_run(outputs)
    return cwd


def test_summarize_a_sweep_and_a_study_together(results):
    study = results / "outputs" / "batching" / "2026-03-02T09-00-00"
    sweep = results / "outputs" / "multirun" / "2026-03-02T09-00-00"
    proc = llem("summarize", str(study), "outputs/multirun/2026-03-02T09-00-00", cwd=results)
    assert proc.returncode == 0, proc.stderr
    assert f"study batching: 12 runs, 4 experiments summarised in {study}/summary.csv" in proc.stdout
    assert f"sweep 2026-03-02T09-00-00: 2 runs, 2 experiments summarised in {sweep}/summary.csv" in proc.stdout
    assert "experiments by energy per output token" in proc.stdout
    assert "failed: batching: dtype=bfloat16 transformers.batch_size=4" in proc.stdout
    runs = pd.read_parquet(study / "summary.parquet")
    assert runs["study"].unique().tolist() == ["batching"] and len(runs) == 12
    assert set(pd.read_csv(sweep / "summary_experiments.csv")["status"]) == {"completed", "failed"}


def test_summarize_of_one_study_writes_its_report_too(tmp_path):
    study = make_study(tmp_path, factors={"dtype": ["float32", "bfloat16"]}, cycles=2, energy=False)
    proc = llem("summarize", str(study), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "experiments by output tokens per second" in proc.stdout and "energy not measured" in proc.stdout
    assert proc.stdout.rstrip().endswith(f"report: {study / 'report.html'}") and (study / "report.html").is_file()


def test_summarize_of_a_single_run_ranks_it_and_writes_nothing(results):
    run = results / "outputs" / "runs" / "2026-03-02T09-00-00"
    before = sorted(p.name for p in run.iterdir())
    proc = llem("summarize", str(run), cwd=results)
    assert proc.returncode == 0, proc.stderr
    assert "experiments by energy per output token" in proc.stdout and "summarised" not in proc.stdout
    assert sorted(p.name for p in run.iterdir()) == before


def test_summarize_refuses_folders_without_results(results):
    assert_one_error_line(llem("summarize", "nowhere", cwd=results), "nowhere: no such folder", "sweep folder")
    assert_one_error_line(llem("summarize", "outputs", cwd=results), "holds no llem results", "holds 3 below")


def test_results_lists_every_study_sweep_and_run(results):
    proc = llem("results", cwd=results)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("│")]
    ids = [row.split("│")[1].strip() for row in rows if row.split("│")[1].strip()]
    assert ids == ["batching/2026-03-02T09-00-00", "multirun/2026-03-02T09-00-00", "runs/2026-03-02T09-00-00"]
    study = rows[0]
    assert "9 completed, 3 failed" in study and "transformers" in study and "mJ/token" in study
    assert "dtype=" in study and "transformers.batch_size=" in study


def test_results_show_ranks_one_by_its_id_or_its_study_name(results):
    for ident in ("batching/2026-03-02T09-00-00", "batching"):
        proc = llem("results", "show", ident, cwd=results)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("study batching (batching/2026-03-02T09-00-00), started 2026-03-02T09:00:00Z")
        assert "batch_size" in proc.stdout
    assert_one_error_line(llem("results", "show", "nope", cwd=results), "no result with ID 'nope'", "llem results")


def test_results_export_writes_one_flat_table(results, tmp_path):
    for fmt in ("parquet", "csv"):
        proc = llem("results", "export", str(tmp_path / fmt), "--format", fmt, cwd=results)
        assert proc.returncode == 0, proc.stderr
        read = pd.read_parquet if fmt == "parquet" else pd.read_csv
        runs = read(tmp_path / fmt / f"runs.{fmt}")
        assert runs["study"].value_counts().to_dict() == {"batching": 12, "2026-03-02T09-00-00": 3}
        assert set(runs["kind"]) == {"study", "sweep", "run"}
        assert len(read(tmp_path / fmt / f"experiments.{fmt}")) == 4 + 2 + 1


def test_results_mistakes_are_one_line_each(results, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_error_line(llem("results", "export", str(blocker), cwd=results), f"{blocker}: cannot write")
    assert_one_error_line(llem("results", "export", "x", "--format", "xls", cwd=results), "invalid choice: 'xls'")
    assert_one_error_line(llem("results", cwd=tmp_path), "outputs: no results folder here")


def test_the_end_of_a_sweep_writes_its_tables_and_ranks_it(tmp_path, capsys):
    sweep = make_sweep(tmp_path, factors={"dtype": ["float32", "bfloat16"]}, failed=[1])
    with pytest.raises(SystemExit) as ended:
        SweepReport().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    assert ended.value.code == 1
    out, err = capsys.readouterr()
    assert "experiments by energy per output token" in out and "failed: dtype=bfloat16" in out
    assert f"report: {sweep / 'report.html'}" in out and (sweep / "report.html").is_file()
    assert err.strip().splitlines()[-1] == f"llem: sweep finished: 1/2 jobs completed; results in {sweep}"
    assert len(pd.read_csv(sweep / "summary.csv")) == 2


def test_a_sweep_without_jobs_warns_instead_of_ranking(tmp_path, capsys):
    (tmp_path / "multirun.yaml").write_text("hydra: {}\n")
    console = Console(record=True)
    summarize_quietly(tmp_path, console)
    assert console.export_text() == ""
    assert f"llem: warning: {tmp_path}: not summarised" in capsys.readouterr().err


def test_report_of_a_sweep_and_of_a_study_beside_it(results, tmp_path):
    sweep = results / "outputs" / "multirun" / "2026-03-02T09-00-00"
    proc = llem("report", "outputs/multirun/2026-03-02T09-00-00", cwd=results)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"report: {sweep / 'report.html'}\n" and (sweep / "report.html").is_file()
    study = results / "outputs" / "batching" / "2026-03-02T09-00-00"
    baseline = load_runs(study)["experiment_id"][0]
    target = tmp_path / "both.html"
    proc = llem("report", str(study), str(sweep), "--output", str(target), "--baseline", baseline, cwd=results)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"report: {target}\n" and "batching" in target.read_text(encoding="utf-8")


def test_report_mistakes_are_one_line_each(results):
    assert_one_error_line(llem("report", "nowhere", cwd=results), "nowhere: no such folder")
    sweep = "outputs/multirun/2026-03-02T09-00-00"
    assert_one_error_line(llem("report", sweep, "--baseline", "zzz", cwd=results), "--baseline zzz", "give one of")


def test_a_damaged_study_is_listed_as_unreadable_and_left_out_of_the_export(tmp_path):
    from llem.results import catalog

    sweep = make_sweep(tmp_path, factors={"dtype": ["float32"]})
    damaged = tmp_path / "broken" / "2026-01-01T00-00-00"
    damaged.mkdir(parents=True)
    (damaged / "manifest.json").write_text("[")
    found = catalog.entries(tmp_path)  # oldest first; the damaged study's date is its folder's
    assert [e.id for e in found] == ["multirun/2026-03-02T09-00-00", "broken/2026-01-01T00-00-00"]
    table = catalog.overview(found)
    assert table["runs"][1].startswith("unreadable: ") and "not valid JSON" in table["runs"][1]
    assert table["runs"][0] == "1 completed" and table["best"][0] == load_runs(sweep)["experiment_id"][0]
    assert table["best_figure"][0].endswith(" mJ/token")
    exported = catalog.export(found, tmp_path / "out", "csv")
    assert pd.read_csv(exported.files[0])["source"].unique().tolist() == [str(sweep)]
    assert [e.id for e in exported.entries] == [found[0].id] and exported.left_out == [found[1]]
    assert catalog.find(tmp_path, str(sweep)).id == "multirun/2026-03-02T09-00-00"
    assert catalog.find(tmp_path, "multirun").folder.path == sweep


def test_export_counts_what_it_exported_and_names_what_it_left_out(tmp_path):
    make_sweep(tmp_path / "outputs", factors={"dtype": ["float32"]})
    damaged = tmp_path / "outputs" / "broken" / "2026-01-01T00-00-00"
    damaged.mkdir(parents=True)
    (damaged / "manifest.json").write_text("[")
    proc = llem("results", "export", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("1 of 2 studies, sweeps and runs under outputs exported to ")
    assert (
        proc.stderr == "llem: warning: left out as unreadable (`llem results` says why): broken/2026-01-01T00-00-00\n"
    )


def test_summarize_still_ranks_when_its_tables_cannot_be_written(tmp_path):
    study = make_study(tmp_path, factors={"dtype": ["float32", "bfloat16"]}, cycles=1)
    (study / "summary.parquet").mkdir()  # in the way of the file
    proc = llem("summarize", str(study), cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("llem: warning: study fake-study not summarised")
    assert f"{study / 'summary.parquet'}: cannot be written" in proc.stderr
    assert "experiments by energy per output token" in proc.stdout and "bfloat16" in proc.stdout


def test_a_ranking_that_breaks_is_a_warning_line_at_the_end_of_a_sweep_and_a_study(tmp_path, monkeypatch, capsys):
    from llem.study import run

    def broken(*args, **kwargs):
        raise RuntimeError("ranking broke")

    monkeypatch.setattr("llem.results.ranking.print_ranking", broken)
    sweep = make_sweep(tmp_path / "sweep", factors={"dtype": ["float32"]})
    SweepReport().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))  # no exit 1
    err = capsys.readouterr().err
    assert f"llem: warning: {sweep}: ranking not printed: ranking broke" in err and "sweep finished: 1/1" in err
    assert (sweep / "summary.csv").is_file()
    study = make_study(tmp_path / "study", factors={"dtype": ["float32"]}, cycles=1)
    monkeypatch.setattr(run, "run_hydra", lambda argv: None)  # the study has already run
    console = Console(record=True, width=200)
    assert run._run_in(study, [], console, locked=False) == 0
    assert f"llem: warning: {study}: ranking not printed: ranking broke" in capsys.readouterr().err
    assert "Study complete: 1/1 ran, 0 failed" in console.export_text()  # the final panel follows
