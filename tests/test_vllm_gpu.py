"""On real NVIDIA GPUs with vLLM's CUDA build: the NVML energy of exactly the GPUs vLLM uses.

Skipped without CUDA or vLLM. A job with ``tensor_parallel_size=n`` is measured on the first ``n``
visible GPUs, and nothing else.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("vllm", reason="vLLM is not installed")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.vllm,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def run_vllm(tmp_path, *overrides: str) -> dict:
    run = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "llem",
            "engine=vllm",
            "model=llem-tiny",
            "energy_sampler=nvml",
            "profile=quick",
            "dataset=synthetic",
            "dataset.input_len=64",
            "dataset.output_len=128",
            "dataset.n_prompts=64",
            *overrides,
            f"hydra.run.dir={run}",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((run / "result.json").read_text())


@pytest.mark.parametrize("tensor_parallel", [1, 2])
def test_energy_covers_exactly_the_gpus_vllm_uses(tiny_model_path, tmp_path, tensor_parallel):
    if torch.cuda.device_count() < tensor_parallel:
        pytest.skip(f"needs {tensor_parallel} GPUs")
    result = run_vllm(tmp_path, f"vllm.engine.tensor_parallel_size={tensor_parallel}")
    energy = result["energy"]
    assert energy["method"] in ("nvml-counter", "nvml-power-integration")
    assert len(energy["per_device_j"]) == tensor_parallel
    assert energy["energy_j"] > 0 and energy["energy_per_output_token_j"] > 0
    assert result["tokens"]["output_tokens"] == 64 * 128
    assert result["engine"]["effective_config"]["tensor_parallel_size"] == tensor_parallel
    assert result["latency"]["ttft"]["count"] == 64
