"""What a real run records: the config that ran, model preparation apart from the load, host load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from llem.results.codec import read_result

SYNTHETIC = ["dataset=synthetic", "dataset.input_len=16", "dataset.output_len=8", "dataset.n_prompts=3"]
QUICK = ["model=llem-tiny", "profile=quick", "energy_sampler=null", "runner.kind=inline"]


def run(run_dir: Path, cache: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLEM_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "llem", *QUICK, *overrides, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_synthetic_lengths_are_exact_and_recorded_as_run(tiny_model_path, tmp_path):
    proc = run(tmp_path / "run", Path(os.environ["LLEM_CACHE_DIR"]), *SYNTHETIC)
    assert proc.returncode == 0, proc.stderr
    result = read_result(tmp_path / "run" / "result.json")
    experiment = json.loads((tmp_path / "run" / "experiment.json").read_text())
    assert experiment["config"] == result.config
    assert result.config["max_output_tokens"] == 8 and result.config["decoder"]["min_new_tokens"] == 8
    assert result.tokens.output_tokens == 3 * 8 and result.tokens.input_tokens == 3 * 16  # BOS counted
    assert result.warmup.output_tokens_per_prompt == 8
    host = result.host_load
    assert host is not None and host.usable_cpus >= 1 and host.load_avg_1m_start is not None
    assert host.own_cpu_s > 0 and (host.busy is True) == any(w.startswith("host busy") for w in result.warnings)
    assert result.model.prepare_time_s is None and result.phases_s.prepare is None  # prepared by the fixture


def test_first_use_preparation_is_recorded_apart_from_the_load(tmp_path):
    cache = tmp_path / "cache"
    first, second = tmp_path / "first", tmp_path / "second"
    proc = run(first, cache, "dataset.n_prompts=2")
    assert proc.returncode == 0, proc.stderr
    assert "preparing built-in model llem-tiny" in proc.stderr
    prepared = read_result(first / "result.json")
    assert prepared.model.prepare_time_s is not None and prepared.model.prepare_time_s > 0
    assert prepared.phases_s.prepare == prepared.model.prepare_time_s
    proc = run(second, cache, "dataset.n_prompts=2")
    assert proc.returncode == 0, proc.stderr
    assert "preparing" not in proc.stderr
    assert read_result(second / "result.json").model.prepare_time_s is None
