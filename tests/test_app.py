"""The task app end to end: `python -m llem` on the tiny built-in model, single runs and sweeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
    assert second["status"] == "failed" and second["error_type"] == "PreflightError"
    assert str(missing) in second["message"]
    assert "1/2 jobs completed" in proc.stderr


def test_unexpected_error_in_single_run_exits_1_and_keeps_the_traceback(tiny_model_path, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "no-such-architecture"}')  # found only when loading
    run_dir = tmp_path / "run"
    proc = llem(*SMALL, f"model={model}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == f"[llem] the traceback is in {run_dir / 'status.json'}"
    status = read(run_dir / "status.json")
    assert status["status"] == "failed" and "Traceback" in status["traceback"]


def test_a_setting_this_machine_cannot_run_stops_before_hydra_writes_anything(tiny_model_path, tmp_path):
    run_dir = tmp_path / "run"
    proc = llem(*SMALL, "model=/nonexistent/model/folder", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert line.startswith("llem: ") and "/nonexistent/model/folder" in line
    assert not run_dir.exists()


def start_llem(*args: str, cwd: Path) -> subprocess.Popen:
    """``python -m llem`` in its own session, with Ctrl-C delivered as it is from a terminal (a child of
    a background shell job would otherwise inherit SIGINT ignored)."""
    return subprocess.Popen(
        [sys.executable, "-m", "llem", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(predicate, proc: subprocess.Popen, limit_s: float = 600) -> None:
    """Poll until ``predicate()`` holds; the process must still be running then."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.2)


def test_ctrl_c_during_a_sweep_is_one_line_and_keeps_finished_jobs(tiny_model_path, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = start_llem(*SMALL, "random_seed=1,2,3,4,5,6", f"hydra.sweep.dir={sweep_dir}", "-m", cwd=tmp_path)
    wait_for(lambda: (sweep_dir / "0" / "result.json").exists() and (sweep_dir / "1" / "status.json").exists(), proc)
    kept = (sweep_dir / "0" / "result.json").read_text()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole foreground group
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("llem:")] == [
        "llem: interrupted (Ctrl-C); results already written are kept"
    ]
    assert (sweep_dir / "0" / "result.json").read_text() == kept
    assert read(sweep_dir / "0" / "status.json")["status"] == "completed"
    statuses = [read(p)["status"] for p in sorted(sweep_dir.glob("*/status.json"))]
    assert "running" not in statuses and statuses[-1] == "interrupted"


def test_ctrl_c_during_a_single_run_is_one_line(tiny_model_path, tmp_path):
    run_dir = tmp_path / "run"
    proc = start_llem(*SMALL, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    wait_for(lambda: "worker" in (read(run_dir / "status.json") if (run_dir / "status.json").exists() else {}), proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("llem:")] == [
        "llem: interrupted (Ctrl-C); results already written are kept"
    ]
    assert read(run_dir / "status.json")["status"] == "interrupted"


@pytest.mark.parametrize("delay_s", [0.0, 1.0, 2.5])
def test_ctrl_c_at_any_moment_never_prints_a_traceback(tiny_model_path, tmp_path, delay_s):
    proc = start_llem(*SMALL, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    time.sleep(delay_s)  # wherever the signal lands (start-up, checks, Hydra, the run), the outcome is the same
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode in (130, -signal.SIGINT), stderr  # -SIGINT: before Python installed its handler
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    if proc.returncode == 130:
        assert stderr.splitlines()[-1].startswith("llem: interrupted (Ctrl-C)")


def test_a_sweep_never_overwrites_the_results_of_an_earlier_one(tiny_model_path, tmp_path):
    per_job = f"output_dir={tmp_path / 'jobs'}/${{hydra:job.num}}"
    first = llem(*SMALL, "dtype=float32,bfloat16", per_job, f"hydra.sweep.dir={tmp_path / 'first'}", "-m", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    results = {p: p.read_bytes() for p in sorted((tmp_path / "jobs").glob("*/result.json"))}
    assert len(results) == 2
    again = llem(*SMALL, "dtype=float32,bfloat16", per_job, f"hydra.sweep.dir={tmp_path / 'again'}", "-m", cwd=tmp_path)
    assert again.returncode == 1, again.stderr  # both jobs refused: the sweep report says so
    assert again.stderr.count("holds the result of an earlier run (result.json)") >= 2
    assert "Traceback" not in again.stderr
    assert {p: p.read_bytes() for p in results} == results
    for job in ("0", "1"):
        assert read(tmp_path / "again" / job / "status.json")["status"] == "failed"


def test_a_single_run_is_checked_once_before_hydra_starts(tiny_model_path, tmp_path, monkeypatch):
    """The pre-flight checks (a hub probe among them) run before Hydra starts, and not again in the job."""
    from llem import app

    checked = []
    real_check = app.check_job
    monkeypatch.setattr(app, "check_job", lambda *a, **k: (checked.append(a[0].model), real_check(*a, **k)))

    def stop_before_measuring(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(app, "measure_job", stop_before_measuring)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["llem", *SMALL, f"hydra.run.dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as stop:
        app.main()
    assert stop.value.code == 130
    assert len(checked) == 1
    assert read(tmp_path / "run" / "status.json")["status"] == "interrupted"  # the job itself did start
