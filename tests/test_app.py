"""The task app end to end: `python -m llem` on the tiny built-in model, single runs and sweeps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SMALL = ["model=llem-tiny", "dataset.n_prompts=4", "max_output_tokens=8", "profile=quick", "energy_sampler=null"]


def llem(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llem", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_single_run_writes_consistent_files(tiny_model_path, tmp_path):
    run_dir = tmp_path / "run"
    proc = llem(*SMALL, "transformers.batch_size=2", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    experiment, result, status = (read(run_dir / f) for f in ("experiment.json", "result.json", "status.json"))
    assert status["status"] == "completed"
    assert experiment["config_hash"] == result["config_hash"]
    assert experiment["config"] == result["config"]
    assert result["config"]["transformers"]["batch_size"] == 2
    tokens = result["tokens"]
    assert tokens["requests"] == 4 and tokens["batches"] == 2
    assert 4 <= tokens["output_tokens"] <= 32
    assert tokens["total_tokens"] == tokens["input_tokens"] + tokens["output_tokens"]
    throughput = result["throughput"]["output_tokens_per_s"]
    assert throughput == tokens["output_tokens"] / result["inference_time_s"]
    assert result["latency"]["ttft"]["count"] == 4 and result["latency"]["ttft"]["p50_s"] > 0
    assert result["flops"]["total"] > 0 and "analytical" in result["flops"]["method"]
    assert result["energy"]["method"] == "none" and result["energy"]["energy_j"] is None
    assert result["engine"]["effective_config"]["batch_size"] == 2
    assert result["model"]["load_time_s"] > 0 and result["memory"]["peak_rss_mb"] > 0
    assert result["environment"]["packages"]["torch"]
    assert result["schema_version"] and result["timestamps"]["inference_start"]
    assert (run_dir / "llem.log").exists() and (run_dir / ".hydra" / "config.yaml").exists()


def test_sweep_runs_one_job_per_combination(tiny_model_path, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = llem(
        *SMALL, "dtype=float32,bfloat16", "dataset.n_prompts=2,3", f"hydra.sweep.dir={sweep_dir}", "-m", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 4
    seen = set()
    for job in jobs:
        result = read(job / "result.json")
        config = result["config"]
        assert read(job / "status.json")["status"] == "completed"
        assert read(job / "experiment.json")["config_hash"] == result["config_hash"]
        assert result["tokens"]["requests"] == config["dataset"]["n_prompts"]
        seen.add((config["dtype"], config["dataset"]["n_prompts"]))
    assert seen == {("float32", 2), ("float32", 3), ("bfloat16", 2), ("bfloat16", 3)}
    assert "4/4 jobs completed" in proc.stderr


def test_failed_job_is_recorded_and_the_sweep_goes_on(tiny_model_path, tmp_path):
    sweep_dir = tmp_path / "sweep"
    missing = tmp_path / "missing.jsonl"
    proc = llem(*SMALL, f"dataset.source=builtin,{missing}", f"hydra.sweep.dir={sweep_dir}", "-m", cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    first, second = (read(sweep_dir / str(i) / "status.json") for i in (0, 1))
    assert first["status"] == "completed" and (sweep_dir / "0" / "result.json").exists()
    assert second["status"] == "failed" and second["error_type"] == "DatasetError"
    assert str(missing) in second["message"]
    assert "1/2 jobs completed" in proc.stderr


def test_unexpected_error_in_single_run_exits_1_with_one_line(tiny_model_path, tmp_path):
    run_dir = tmp_path / "run"
    proc = llem(*SMALL, "model=/nonexistent/model/folder", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 1
    assert "/nonexistent/model/folder" in proc.stderr and "Traceback" not in proc.stderr
    assert read(run_dir / "status.json")["status"] == "failed"
