"""One table of runs across study, sweep and single-run folders, and the clear refusal of other folders."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from llem.errors import LlemError
from llem.results import load
from llem.results.collect import find_result_folders, load_runs
from llem.results.summary import METRICS, aggregate
from tests.fakes.result import write_example_result

CONFIG = {"model": "llem-tiny", "engine": "transformers", "dtype": "float32", "output_dir": None}


def job(folder: Path, status: dict | None, config: dict | None, seconds: float | None = None) -> Path:
    """A job folder: status.json, experiment.json (config hash from the config's dtype) and a result."""
    folder.mkdir(parents=True)
    if status is not None:
        (folder / "status.json").write_text(json.dumps(status))
    if config is not None:
        record = {"config_hash": f"{config['dtype']:0<16}", "config": config}
        (folder / "experiment.json").write_text(json.dumps(record))
    if seconds is not None:
        write_example_result(folder, output_tokens=32, inference_time_s=seconds)
    return folder


def sweep(root: Path, jobs: list[tuple[str, str, float | None]]) -> Path:
    """A ``-m`` sweep folder: job ``i`` per ``(dtype, status, inference seconds)``."""
    for i, (dtype, status, seconds) in enumerate(jobs):
        state = {"status": status} if status == "completed" else {"status": status, "message": f"job {i} broke"}
        job(root / str(i), state, {**CONFIG, "dtype": dtype, "output_dir": str(root / str(i))}, seconds)
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def test_a_sweep_a_study_and_a_single_run_load_into_one_table(tmp_path):
    from tests.test_summary import study

    sweep_dir = sweep(tmp_path / "multirun" / "t1", [("float32", "completed", 2.0), ("bfloat16", "completed", 4.0)])
    study_dir = study(tmp_path / "study", [("e0", "completed", 1.0), ("e0", "completed", 2.0)])
    run_dir = job(tmp_path / "runs" / "t2", {"status": "completed"}, CONFIG, 8.0)
    runs = load([sweep_dir, str(study_dir), run_dir / "result.json", sweep_dir])  # a folder given twice counts once
    assert runs["kind"].tolist() == ["sweep", "sweep", "study", "study", "run"]
    assert runs["study"].tolist() == ["t1", "t1", "s", "s", "t2"]
    assert runs["source"].tolist() == [str(sweep_dir)] * 2 + [str(study_dir)] * 2 + [str(run_dir)]
    assert Path(runs["job_dir"][2]) == study_dir / "0000_e0_c0" and Path(runs["job_dir"][0]).is_absolute()
    assert runs["experiment_id"].tolist()[:2] == ["float320", "bfloat16"] and runs["cycle"].tolist()[:2] == [0, 0]
    assert runs["output_tokens_per_s"].tolist() == [16.0, 8.0, 32.0, 16.0, 4.0]
    assert set(METRICS) <= set(runs.columns)
    assert runs["peak_memory_mb"][0] == 120.0 and runs["peak_memory_scope"][0] == "peak rss"
    assert not runs["energy_estimated"].any()
    # Only the key that varies: the sweep's job folders (output_dir) say where, not what, ran.
    assert [c for c in runs.columns if c.startswith("config.")] == ["config.dtype"]


def test_repeated_sweep_configurations_are_cycles_of_one_experiment(tmp_path):
    folder = sweep(tmp_path, [("float32", "completed", 2.0), ("float32", "completed", 4.0), ("x", "failed", None)])
    runs = load_runs(folder)
    assert runs["cycle"].tolist() == [0, 1, 0] and runs["experiment_id"].nunique() == 2
    experiments = aggregate(runs)
    assert experiments[["n", "n_runs", "status"]].values.tolist() == [[2, 2, "completed"], [0, 1, "failed"]]
    assert pd.isna(experiments["error"][0]) and experiments["error"][1] == "job 2 broke"
    assert experiments["output_tokens_per_s.mean"][0] == 12.0 and experiments["output_tokens_per_s.n"][1] == 0


def test_sweep_jobs_in_number_order_with_damaged_and_refused_ones(tmp_path):
    for i in (0, 2, 10):
        job(tmp_path / str(i), {"status": "completed"}, {**CONFIG, "dtype": f"d{i}"}, 2.0)
    job(tmp_path / "1", {"status": "failed", "message": "refused: holds an earlier result"}, None)
    (tmp_path / "2" / "status.json").write_text("{")
    (tmp_path / "10" / "result.json").write_text("[]")
    runs = load_runs(tmp_path)
    assert runs["position"].tolist() == [0, 1, 2, 10]
    assert runs["experiment_id"][1] == "1" and runs["status"][1] == "failed" and "refused" in runs["error"][1]
    assert runs["status"][2] == "unknown" and "status.json" in runs["error"][2] and pd.isna(runs["inference_time_s"][2])
    assert "result.json" in runs["error"][3] and pd.isna(runs["output_tokens_per_s"][3])


def test_a_study_run_that_never_started_takes_its_config_from_the_plan(tmp_path):
    from tests.test_summary import study

    folder = study(tmp_path, [("e0", "completed", 1.0), ("e1", "skipped", None)])
    for position, dtype in enumerate(("float32", "bfloat16")):
        config = {**CONFIG, "dtype": dtype}
        if position == 0:
            (folder / "0000_e0_c0" / "experiment.json").write_text(json.dumps({"config": config}))
        else:
            (folder / "0001_e1_c1" / "experiment.json").unlink()
    plan = {"runs": [{"position": p, "config": {**CONFIG, "dtype": d}} for p, d in enumerate(("float32", "bfloat16"))]}
    (folder / "study_plan.json").write_text(json.dumps(plan))
    runs = load_runs(folder)
    assert runs["config.dtype"].tolist() == ["float32", "bfloat16"]
    assert [c for c in runs.columns if c.startswith("config.")] == ["config.dtype"]
    experiments = aggregate(runs)
    assert experiments["status"].tolist() == ["completed", "skipped"] and experiments["error"][1] == "boom"


def test_a_sweep_without_jobs_yet_is_one_clear_error(tmp_path):
    (tmp_path / "multirun.yaml").write_text("hydra: {}\n")
    with pytest.raises(LlemError, match="a sweep folder without any run yet"):
        load_runs(tmp_path)


@pytest.mark.parametrize("layout", ["empty", "unrelated", "missing"])
def test_a_folder_without_results_is_one_clear_error(tmp_path, layout):
    folder = tmp_path / "here"
    if layout != "missing":
        folder.mkdir()
    if layout == "unrelated":
        (folder / "notes").mkdir()
        (folder / "notes" / "a.txt").write_text("x")
    with pytest.raises(LlemError) as err:
        load_runs(folder)
    message = str(err.value)
    assert message.startswith(str(folder)) and "study folder" in message and "sweep" in message
    assert ("no such folder" in message) == (layout == "missing")


def test_a_parent_of_result_folders_is_refused_with_the_folders_below(tmp_path):
    runs = [job(tmp_path / "outputs" / "runs" / t, {"status": "completed"}, CONFIG, 2.0) for t in ("t1", "t2")]
    for parent in (tmp_path / "outputs", tmp_path / "outputs" / "runs"):  # single runs side by side: no sweep
        with pytest.raises(LlemError, match=f"holds 2 below, e.g. {runs[0]}"):
            load_runs(parent)
    assert [(f.path, f.kind) for f in find_result_folders(tmp_path)] == [(r, "run") for r in runs]


def test_no_folder_is_an_error(tmp_path):
    with pytest.raises(LlemError, match="no folder given"):
        load_runs([])


def test_a_run_inside_two_folders_given_loads_once_and_its_result_is_handed_back(tmp_path):
    folder = sweep(tmp_path, [("float32", "completed", 2.0), ("bfloat16", "failed", None)])
    results = {}
    runs = load_runs([folder, folder / "0"], results)  # the sweep, then one of its jobs
    assert runs["job_dir"].tolist() == [str(folder / "0"), str(folder / "1")]
    assert list(results) == [str(folder / "0")] and results[str(folder / "0")].inference_time_s == 2.0
