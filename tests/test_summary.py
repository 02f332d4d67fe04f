"""Study tables from result files read through the one reader: per-run rows and per-experiment statistics."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from llem.results.collect import RUN_COLUMNS
from llem.results.summary import METRICS, tables, write_tables
from tests.fakes.result import write_example_result


def write_summary(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run and experiment tables of ``folder``, written into it as a study's end writes them."""
    runs, experiments = tables(folder)
    write_tables(runs, experiments, folder)
    return runs, experiments


def study(tmp_path: Path, runs: list[tuple[str, str, float | None]]) -> Path:
    """A study folder: one job per ``(experiment, status, inference seconds)``; results for completed jobs."""
    entries = []
    for position, (experiment, status, seconds) in enumerate(runs):
        job = f"{position:04d}_{experiment}_c{position}"
        (tmp_path / job).mkdir(parents=True)
        config = {"model": "llem-tiny", "engine": "transformers", "dtype": "float32"}
        (tmp_path / job / "experiment.json").write_text(json.dumps({"config": config}))
        if seconds is not None:
            write_example_result(tmp_path / job, output_tokens=32, inference_time_s=seconds)
        entries.append(
            {
                "position": position,
                "experiment_id": experiment,
                "cycle": position,
                "engine": "transformers",
                "status": status,
                "job_dir": job,
                "error": None if status == "completed" else "boom",
            }
        )
    manifest = {"study_name": "s", "study_design_hash": "0" * 16, "runs": entries}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


def test_rows_and_statistics_come_from_the_typed_results(tmp_path):
    folder = study(tmp_path, [("e0", "completed", 2.0), ("e0", "completed", 4.0), ("e0", "failed", None)])
    runs, experiments = write_summary(folder)
    assert list(runs.columns[: len(RUN_COLUMNS)]) == list(RUN_COLUMNS)
    assert set(METRICS) <= set(runs.columns)
    assert runs["output_tokens_per_s"].tolist()[:2] == [16.0, 8.0] and pd.isna(runs["output_tokens_per_s"][2])
    assert runs["energy_method"][0] == "none" and pd.isna(runs["energy_j"][0])  # not measured: empty, not 0
    assert runs["host_busy"].tolist()[:2] == [False, False] and runs["n_warnings"][0] == 0
    row = experiments.iloc[0]
    assert row["n"] == 2 and row["output_tokens_per_s.mean"] == 12.0
    assert row["output_tokens_per_s.std"] == pytest.approx(4 * 2**0.5)  # sample std of 16 and 8
    assert row["energy_j.n"] == 0  # no energy figure in any run
    assert (folder / "summary.csv").exists() and (folder / "summary_experiments.parquet").exists()


def test_an_unreadable_result_leaves_its_row_empty_with_the_reason(tmp_path):
    folder = study(tmp_path, [("e0", "completed", 2.0), ("e0", "completed", 4.0)])
    newer = folder / "0001_e0_c1" / "result.json"
    newer.write_text(json.dumps({**json.loads(newer.read_text()), "schema_version": "2.0"}))
    runs, experiments = write_summary(folder)
    assert "schema version 2.0" in runs["error"][1] and pd.isna(runs["output_tokens_per_s"][1])
    assert experiments.iloc[0]["output_tokens_per_s.n"] == 1


@pytest.mark.parametrize(
    "damage",
    [b"{", b"\xff\xfe", b"[1]", b'{"config": 5}', b'{"schema_version": "1.0", "tokens": 5}'],
)
def test_damaged_run_files_leave_their_row_with_the_reason(tmp_path, damage):
    """A damaged experiment.json or result.json of one run: its row says why, the others summarise."""
    folder = study(tmp_path, [("e0", "completed", 2.0), ("e0", "completed", 4.0), ("e0", "completed", 8.0)])
    (folder / "0001_e0_c1" / "experiment.json").write_bytes(damage)
    (folder / "0002_e0_c2" / "result.json").write_bytes(damage)
    runs, experiments = write_summary(folder)
    assert "experiment.json" in runs["error"][1] and "damaged" in runs["error"][1]
    assert "result.json" in runs["error"][2] and pd.isna(runs["output_tokens_per_s"][2])
    assert runs["output_tokens_per_s"].tolist()[:2] == [16.0, 8.0]
    assert experiments.iloc[0]["output_tokens_per_s.n"] == 2


def test_intervals_never_go_below_zero_and_say_when_clipped(tmp_path):
    from rich.console import Console

    from llem.results.ranking import print_ranking

    folder = study(tmp_path, [("e0", "completed", 2.0), ("e0", "completed", 400.0), ("e1", "failed", None)])
    _, experiments = write_summary(folder)
    row = experiments.iloc[0]
    assert row["output_tokens_per_s.ci95_low"] == 0.0 and row["output_tokens_per_s.ci95_clipped"]
    assert row["output_tokens_per_s.ci95_high"] > row["output_tokens_per_s.mean"] == pytest.approx(8.04)
    assert experiments["status"].tolist() == ["completed", "failed"] and experiments["error"][1] == "boom"
    console = Console(record=True, width=200)
    print_ranking(experiments, console)
    text = console.export_text()
    assert "8.04 (0*–" in text and "* interval clipped at 0" in text


def test_whole_number_factors_stay_whole_beside_a_job_without_its_config(tmp_path):
    """A job still running (no experiment.json yet) must not turn batch_size 1 into 1.0."""
    from llem.results.collect import load_runs
    from llem.results.ranking import describe, varying_factors
    from llem.results.summary import aggregate
    from tests.fakes.results_tree import make_sweep

    folder = make_sweep(tmp_path, factors={"transformers.batch_size": [1, 4]})
    (folder / "2").mkdir()
    (folder / "2" / "status.json").write_text(json.dumps({"status": "running"}))
    experiments = aggregate(load_runs(folder))
    column = experiments["config.transformers.batch_size"]
    assert column.dtype == "Int64" and column.tolist()[:2] == [1, 4] and pd.isna(column[2])
    assert describe(experiments.iloc[0], varying_factors(experiments)) == "transformers.batch_size=1"


def test_a_completed_run_whose_result_cannot_be_read_is_counted_apart_with_its_reason(tmp_path):
    from rich.console import Console

    from llem.results.ranking import print_ranking

    folder = study(tmp_path, [("e0", "completed", 2.0), ("e0", "completed", 4.0), ("e0", "completed", 8.0)])
    (folder / "0001_e0_c1" / "result.json").write_text('{"broken')
    _, experiments = write_summary(folder)
    row = experiments.iloc[0]
    assert (row["n"], row["n_unreadable"], row["n_runs"], row["status"]) == (2, 1, 3, "completed")
    assert "0001_e0_c1" in row["error"] and "result.json" in row["error"]
    assert row["n"] == row["output_tokens_per_s.n"]
    assert pd.read_csv(folder / "summary_experiments.csv")["n_unreadable"].tolist() == [1]
    console = Console(record=True, width=300)
    print_ranking(experiments, console)
    line = next(line for line in console.export_text().splitlines() if line.startswith("completed but unreadable"))
    assert "1 run(s) of e0 (e0), left out of n" in line and "result.json" in line


def test_peak_memory_is_the_models_device_never_the_host_beside_a_gpu(tmp_path):
    from dataclasses import replace

    from llem.results.summary import peak_memory_mb, peak_memory_scope
    from tests.fakes.result import example_result

    cpu = example_result()
    assert (peak_memory_mb(cpu), peak_memory_scope(cpu)) == (120.0, "peak rss")
    gpu_unmeasured = replace(cpu, model=replace(cpu.model, device="cuda:0"))  # e.g. TensorRT-LLM
    assert (peak_memory_mb(gpu_unmeasured), peak_memory_scope(gpu_unmeasured)) == (None, None)
    measured = replace(gpu_unmeasured, memory=replace(cpu.memory, cuda_peak_allocated_mb=500.0))
    assert (peak_memory_mb(measured), peak_memory_scope(measured)) == (500.0, "cuda peak allocated")


def test_a_table_that_cannot_be_written_is_one_error_naming_its_file(tmp_path):
    from llem.errors import LlemError

    folder = study(tmp_path, [("e0", "completed", 2.0)])
    (folder / "summary_experiments.csv").mkdir()  # in the way of the file
    with pytest.raises(LlemError, match=r"summary_experiments\.csv: cannot be written .*make the folder writable"):
        write_summary(folder)
    assert not list(folder.glob(".*.tmp"))
