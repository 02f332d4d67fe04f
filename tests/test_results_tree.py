"""The fake result trees (tests/fakes/results_tree.py) read back through llem's own readers."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from llem.results.codec import RESULT_FILE, read_result
from llem.results.collect import load_runs
from llem.study.manifest import read_manifest
from tests.fakes.results_tree import DEFAULT_EFFECT, make_single_run, make_study, make_sweep

FACTORS = {"dtype": ["float16", "bfloat16"], "transformers.batch_size": [1, 4, 16]}


def test_a_study_reads_back_run_by_run(tmp_path):
    folder = make_study(tmp_path, factors=FACTORS, cycles=3, failed={(5, None), (0, 1)}, skipped={(2, 2)})
    manifest = read_manifest(folder / "manifest.json")
    assert manifest["status"] == "completed" and manifest["counts"] == {"completed": 13, "failed": 4, "skipped": 1}
    assert (folder / "study_plan.json").exists() and json.loads((folder / "skipped.json").read_text()) == []
    results = []
    for run in manifest["runs"]:
        job = folder / run["job_dir"]
        if run["status"] == "skipped":
            assert not job.exists()
            continue
        assert json.loads((job / "status.json").read_text())["status"] == run["status"]
        config = json.loads((job / "experiment.json").read_text())["config"]
        if run["status"] == "completed":
            result = read_result(job / RESULT_FILE)
            assert result.config == config and result.config_hash.startswith(run["experiment_id"])
            assert run["headline"]["output_tokens"] == result.tokens.output_tokens
            results.append((job, result))
        else:
            assert "out of memory" in run["error"] and not (job / RESULT_FILE).exists()
    with_series = [job for job, result in results if result.telemetry.timeseries is not None]
    assert [job for job in with_series if (job / "timeseries.parquet").exists()] == with_series
    assert len(with_series) == 2
    assert pd.read_parquet(with_series[0] / "timeseries.parquet")["power_w"].max() > 250
    assert any(result.warnings for _, result in results) and not all(result.warnings for _, result in results)
    for _, result in results:
        energy = result.energy
        assert energy.measured and energy.energy_j == pytest.approx(energy.avg_power_w * energy.window_s)
        assert 0 < energy.adjusted_energy_j < energy.energy_j


def test_the_default_effect_is_visible_and_null_data_has_none(tmp_path):
    def mean_energy(folder, dtype):
        runs = load_runs(folder)
        return runs.loc[runs["config.dtype"] == dtype, "energy_per_output_token_j"].mean()

    factors = {"dtype": ["float16", "bfloat16"]}
    effect = make_study(tmp_path / "effect", factors=factors, cycles=5, spread=0.0)
    assert mean_energy(effect, "bfloat16") / mean_energy(effect, "float16") == pytest.approx(DEFAULT_EFFECT, rel=0.05)
    null = make_study(tmp_path / "null", factors=factors, cycles=5, spread=0.0, effects={})
    assert mean_energy(null, "bfloat16") / mean_energy(null, "float16") == pytest.approx(1.0, rel=0.05)


def test_combinations_the_planner_refuses_are_skipped_by_it(tmp_path):
    folder = make_study(tmp_path, factors={"dtype": ["float16", "auto"]}, cycles=2)
    (refused,) = json.loads((folder / "skipped.json").read_text())
    assert "dtype" in refused["reason"] and len(read_manifest(folder / "manifest.json")["runs"]) == 2


def test_without_energy_the_runs_are_cpu_runs_with_null_energy(tmp_path):
    folder = make_study(tmp_path, factors={"dtype": ["float32", "bfloat16"]}, cycles=2, energy=False)
    runs = load_runs(folder)
    assert runs["energy_per_output_token_j"].isna().all() and (runs["output_tokens_per_s"] > 0).all()


def test_an_estimated_energy_figure_says_so(tmp_path):
    folder = make_study(tmp_path, factors={"dtype": ["float16", "bfloat16"]}, cycles=1, energy_estimated=True)
    (job,) = folder.glob("0000_*")
    result = read_result(job / RESULT_FILE)
    assert result.energy.method == "codecarbon-estimate" and not result.energy.measured
    assert any(w.startswith("estimate only") for w in result.warnings)


def test_a_sweep_and_a_single_run_read_back(tmp_path):
    sweep = make_sweep(tmp_path, factors={"dtype": ["float16", "bfloat16"], "max_output_tokens": [64, 128]}, failed={3})
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    task = yaml.safe_load((sweep / "multirun.yaml").read_text())["hydra"]["overrides"]["task"]
    assert "dtype=float16,bfloat16" in task and "max_output_tokens=64,128" in task
    assert read_result(sweep / "2" / RESULT_FILE).config["max_output_tokens"] == 64
    assert json.loads((sweep / "3" / "status.json").read_text())["status"] == "failed"
    single = make_single_run(tmp_path)
    assert read_result(single / RESULT_FILE).telemetry.timeseries.rows > 0
    runs = load_runs([sweep, single])
    assert runs["kind"].tolist() == ["sweep"] * 4 + ["run"]
    assert runs["status"].tolist() == ["completed"] * 3 + ["failed", "completed"]
