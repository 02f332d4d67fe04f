"""On real NVIDIA GPUs with TensorRT-LLM 1.2: the tiny built-in model through both LLM classes,
forced-length token counts, per-request latency, the engine cache, the GPUs measured, and a study
mixing the three engines. Skipped without CUDA or TensorRT-LLM (CI has neither)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip(
    "tensorrt_llm", reason="TensorRT-LLM is not installed (pip install 'llem[tensorrt]', docs/tensorrt.md)"
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

PROMPTS, LENGTH = 16, 32


def run_llem(cwd: Path, run: Path, *overrides: str) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "llem",
            "engine=tensorrt",
            "model=llem-tiny",
            "dtype=float16",
            "energy_sampler=nvml",
            "profile=quick",
            "dataset=synthetic",
            "dataset.input_len=64",
            f"dataset.output_len={LENGTH}",
            f"dataset.n_prompts={PROMPTS}",
            *overrides,
            f"hydra.run.dir={run}",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((run / "result.json").read_text())


@pytest.mark.parametrize("backend", ["pytorch", "trt"])
def test_forced_lengths_and_latency_on_each_backend(tiny_model_path, tmp_path, backend):
    result = run_llem(tmp_path, tmp_path / "run", f"tensorrt.engine={backend}")
    assert result["tokens"]["output_tokens"] == PROMPTS * LENGTH
    assert result["latency"]["ttft"]["count"] == PROMPTS
    assert result["latency"]["itl"]["count"] == PROMPTS * (LENGTH - 1)
    effective = result["engine"]["effective_config"]
    assert effective["backend"] == backend and effective["kv_cache_config"]["enable_block_reuse"] is False
    assert len(result["energy"]["per_device_j"]) == 1 and result["energy"]["energy_j"] > 0


def test_a_built_engine_is_cached_and_reused(tiny_model_path, tmp_path):
    first = run_llem(tmp_path, tmp_path / "first", "tensorrt.engine=trt", "tensorrt.max_batch_size=16")
    second = run_llem(tmp_path, tmp_path / "second", "tensorrt.engine=trt", "tensorrt.max_batch_size=16")
    built, reused = (r["engine"]["build"] for r in (first, second))
    assert (built["cache"], reused["cache"]) == ("built", "reused")
    assert built["cache_key"] == reused["cache_key"]
    assert second["tokens"]["output_tokens"] == first["tokens"]["output_tokens"]


def test_the_installed_version_is_the_one_llem_follows():
    import tensorrt_llm

    from llem.engines.tensorrt.capabilities import TENSORRT_LLM_VERSION

    assert tensorrt_llm.__version__ == TENSORRT_LLM_VERSION


def test_a_study_mixing_three_engines(tiny_model_path, tmp_path):
    pytest.importorskip("vllm", reason="vLLM is not installed")
    study = tmp_path / "mixed.yaml"
    study.write_text(
        "model: llem-tiny\n"
        "dtype: float16\n"
        "dataset: {source: synthetic, input_len: 32, output_len: 16, n_prompts: 8}\n"
        "sweep:\n  engine: [transformers, vllm, tensorrt]\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "llem", "run", str(study), "--output", str(tmp_path / "out"), "--profile", "quick"],
        capture_output=True,
        text=True,
        timeout=3600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (manifest,) = (tmp_path / "out").rglob("manifest.json")
    runs = json.loads(manifest.read_text())["runs"]
    assert sorted(r["engine"] for r in runs) == ["tensorrt", "transformers", "vllm"]
    assert all(r["status"] == "completed" for r in runs)
