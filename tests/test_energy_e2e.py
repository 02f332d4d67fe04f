"""Every sampler end to end: `python -m llem` on the tiny model against the simulated hardware.

The fake pynvml reaches the measuring process through PYTHONPATH; the fake powercap tree through
LLEM_POWERCAP_ROOT. Each run's energy is compared with the simulation's known total over the window
recorded in result.json.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.fakes.fixtures import fake_nvml_env
from tests.fakes.gpus import A100, H100, P100
from tests.fakes.nvml import fake_gpu  # the simulation's own arithmetic, for the known totals
from tests.fakes.powercap import COUNTED, FakePowercap

# About two seconds of inference on the tiny model: long enough for 1 % at 10 Hz polling.
WORK = ["model=llem-tiny", "warmup.n_warmup=0", "baseline.enabled=false", "dataset.n_prompts=4", "max_output_tokens=64"]


# timeseries.parquet's columns as the spec names them (written out here, not taken from llem).
SPEC_COLUMNS = [
    "timestamp_s",
    "gpu_index",
    "power_w",
    "temperature_c",
    "memory_used_mb",
    "memory_total_mb",
    "sm_utilisation_pct",
    "throttle_reasons",
    "sm_clock_mhz",
    "memory_clock_mhz",
]


def llem(tmp_path: Path, *args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, dict | None]:
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "llem", *args, f"hydra.run.dir={run_dir}"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    result = run_dir / "result.json"
    return proc, json.loads(result.read_text()) if result.exists() else None


def scenario(tmp_path: Path, devices: list[dict], **extra) -> tuple[fake_gpu.Scenario, dict[str, str]]:
    path = tmp_path / "scenario.json"
    sc = fake_gpu.write_scenario(path, epoch_unix_s=time.time(), devices=devices, **extra)
    env = fake_nvml_env(path)
    env["LLEM_POWERCAP_ROOT"] = str(tmp_path / "no-powercap")
    for key in ("CUDA_VISIBLE_DEVICES", "LLEM_CARBON_INTENSITY", "LLEM_DATACENTER_PUE"):
        env.pop(key, None)
    env["LLEM_USER_CONFIG"] = str(tmp_path / "no-user-config.yaml")
    return sc, env


def window(result: dict) -> tuple[float, float]:
    w = result["energy"]["window"]
    return w["start_unix_s"], w["end_unix_s"]


def assert_within_1pct(measured: float, known: float) -> None:
    assert abs(measured - known) <= 0.01 * known, (measured, known)


def test_nvml_counter_two_gpus_mapped_through_cuda_visible_devices(tiny_model_path, tmp_path):
    sc, env = scenario(tmp_path, [H100, A100])
    env.update(CUDA_VISIBLE_DEVICES="1,0", LLEM_CARBON_INTENSITY="300", LLEM_DATACENTER_PUE="1.5")
    proc, result = llem(tmp_path, *WORK, "energy_sampler=nvml", env=env)
    assert proc.returncode == 0, proc.stderr
    energy = result["energy"]
    assert energy["method"] == "nvml-counter" and energy["measured"] is True and energy["scope"] == ["gpu"]
    assert energy["sampler"] == {"requested": "nvml", "chosen": "nvml", "unavailable": {}}
    start, end = window(result)
    # The engine's gpu0 is NVML's GPU 1 (the A100), gpu1 the H100.
    known = {"gpu0": sc.energy_between_j(1, start, end), "gpu1": sc.energy_between_j(0, start, end)}
    for label, expected in known.items():
        assert_within_1pct(energy["per_device_j"][label], expected)
    assert_within_1pct(energy["energy_j"], sum(known.values()))
    assert [d["identity"] for d in energy["devices"]] == [A100["uuid"], H100["uuid"]]
    # The energy window is the timed inference window.
    assert energy["window_s"] == pytest.approx(result["inference_time_s"], abs=0.05)
    assert energy["avg_power_w"] == pytest.approx(energy["energy_j"] / energy["window_s"])
    tokens = result["tokens"]
    assert energy["energy_per_output_token_j"] == pytest.approx(energy["energy_j"] / tokens["output_tokens"])
    assert energy["tokens_per_joule"] == pytest.approx(tokens["output_tokens"] / energy["energy_j"])
    assert energy["carbon_gco2e"] == pytest.approx(energy["energy_j"] / 3.6e6 * 1.5 * 300)
    assert "energy: measured by nvml-counter (energy_sampler=nvml)" in proc.stderr
    # Telemetry: 10 Hz during inference, 1 Hz timeseries with the spec's columns.
    telemetry = result["telemetry"]
    assert telemetry["available"] and telemetry["samples"] >= 2 * 10 * energy["window_s"] * 0.8
    assert telemetry["throttling"]["throttled"] is False
    table = pd.read_parquet(tmp_path / "run" / "timeseries.parquet")
    assert list(table.columns) == SPEC_COLUMNS
    assert set(table["gpu_index"]) == {0, 1}
    a100 = table[table["gpu_index"] == 0]
    assert a100["power_w"].between(250, 370).all() and (a100["memory_total_mb"] == 81559.0).all()
    assert (a100["sm_utilisation_pct"] == 97.0).all() and (a100["throttle_reasons"] == 0).all()


def test_nvml_power_integration_when_a_gpu_has_no_counter(tiny_model_path, tmp_path):
    sc, env = scenario(tmp_path, [P100])
    proc, result = llem(tmp_path, *WORK, "energy_sampler=nvml", "gpu_telemetry=false", env=env)
    assert proc.returncode == 0, proc.stderr
    energy = result["energy"]
    assert energy["method"] == "nvml-power-integration"
    start, end = window(result)
    assert_within_1pct(energy["energy_j"], sc.energy_between_j(0, start, end))
    assert energy["power_samples"] >= 10 * energy["window_s"] * 0.8
    assert any("no energy counter on gpu0" in w for w in energy["warnings"])
    assert not (tmp_path / "run" / "timeseries.parquet").exists()  # gpu_telemetry=false
    assert result["telemetry"]["available"] and result["telemetry"]["timeseries"] is None


@pytest.mark.skipif(importlib.util.find_spec("zeus") is None, reason="the zeus extra is not installed")
def test_auto_chooses_zeus_first_and_zeus_reads_the_simulated_counter(tiny_model_path, tmp_path):
    sc, env = scenario(tmp_path, [H100, A100])
    proc, result = llem(tmp_path, *WORK, env=env)
    assert proc.returncode == 0, proc.stderr
    energy = result["energy"]
    assert energy["method"] == "zeus-counter" and energy["sampler"]["chosen"] == "zeus"
    start, end = window(result)
    for i, label in enumerate(("gpu0", "gpu1")):
        assert_within_1pct(energy["per_device_j"][label], sc.energy_between_j(i, start, end))


@pytest.mark.skipif(importlib.util.find_spec("zeus") is None, reason="the zeus extra is not installed")
def test_zeus_polls_power_on_a_gpu_without_counter(tiny_model_path, tmp_path):
    # A Pascal GPU whose power reading refreshes every 20 ms, as real ones do (Zeus keeps changed values only).
    sc, env = scenario(tmp_path, [{**P100, "power_update_s": 0.02}])
    proc, result = llem(tmp_path, *WORK, "energy_sampler=zeus", env=env)
    assert proc.returncode == 0, proc.stderr
    energy = result["energy"]
    assert energy["method"] == "zeus-power-polling"
    start, end = window(result)
    known = sc.energy_between_j(0, start, end)
    # Zeus integrates only the samples inside the window, each up to 20 ms old: 2 %, not 1 %.
    assert abs(energy["energy_j"] - known) <= 0.02 * known, (energy["energy_j"], known)


@pytest.mark.skipif(importlib.util.find_spec("zeus") is None, reason="the zeus extra is not installed")
def test_auto_passes_zeus_over_on_a_gpu_without_counter(tiny_model_path, tmp_path):
    sc, env = scenario(tmp_path, [{**P100, "power_update_s": 0.02}])
    proc, result = llem(tmp_path, *WORK, env=env)
    assert proc.returncode == 0, proc.stderr
    energy = result["energy"]
    assert energy["method"] == "nvml-power-integration" and energy["sampler"]["chosen"] == "nvml"
    assert "busy-loops a CPU core" in energy["sampler"]["unavailable"]["zeus"]
    start, end = window(result)
    assert_within_1pct(energy["energy_j"], sc.energy_between_j(0, start, end))


def test_auto_falls_back_to_rapl_and_explains_why(tiny_model_path, tmp_path):
    _, env = scenario(tmp_path, [H100], init_error="library_not_found")
    env["LLEM_POWERCAP_ROOT"] = str(tmp_path / "powercap")
    with FakePowercap(tmp_path / "powercap") as tree:
        proc, result = llem(tmp_path, *WORK, env=env)
    assert proc.returncode == 0, proc.stderr
    energy = result["energy"]
    assert energy["method"] == "rapl" and energy["scope"] == ["cpu", "dram"]
    assert energy["sampler"]["unavailable"]["nvml"] == "NVML: library not found"
    assert energy["sampler"]["unavailable"]["zeus"] in ("Zeus: package not installed", "Zeus: NVML: library not found")
    start, end = window(result)
    for path, label in COUNTED.items():
        known = tree.energy_between_j(path, start, end)
        assert abs(energy["per_device_j"][label] - known) <= tree.tolerance_j(path, start, end), (label, known)
    telemetry = result["telemetry"]
    assert telemetry["available"] is False and telemetry["reason"] == "NVML: library not found"
    assert telemetry["samples"] is None and telemetry["throttling"] is None and telemetry["timeseries"] is None


def test_idle_baseline_before_load_and_adjusted_energy(tiny_model_path, tmp_path):
    idle = {**H100, "load_after_s": 1e9, "idle_ripple_w": 0.3}  # the simulated GPU idles throughout
    _, env = scenario(tmp_path, [idle])
    args = [
        *WORK,
        "energy_sampler=nvml",
        "baseline.enabled=true",
        "baseline.duration_seconds=5",
        "baseline.strategy=fresh",
    ]
    proc, result = llem(tmp_path, *args, env=env)
    assert proc.returncode == 0, proc.stderr
    energy = result["energy"]
    baseline = energy["baseline"]
    assert baseline["measured"] and baseline["source"] == "measured" and baseline["strategy"] == "fresh"
    assert_within_1pct(baseline["power_w"], 70.0)
    assert baseline["samples"] == 10 and baseline["std_w"] >= 0
    assert baseline["requested_duration_s"] == 5.0 and baseline["duration_s"] >= 5.0  # the time measured
    assert result["phases_s"]["baseline"] >= 5.0
    expected = max(0.0, energy["energy_j"] - baseline["power_w"] * energy["window_s"])
    assert energy["adjusted_energy_j"] == pytest.approx(expected)
    baseline_above = baseline["power_w"] * energy["window_s"] > energy["energy_j"]
    assert baseline_above == any(w.startswith("baseline above raw") for w in energy["warnings"])


def test_explicit_nvml_without_nvml_is_one_line_and_non_zero(tiny_model_path, tmp_path):
    _, env = scenario(tmp_path, [H100], init_error="library_not_found")
    proc, result = llem(tmp_path, *WORK, "energy_sampler=nvml", env=env)
    assert proc.returncode != 0 and result is None
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "energy_sampler=nvml" in line]
    assert len(lines) >= 1
    assert (
        "energy_sampler=nvml: NVML: library not found; install the NVIDIA driver, or set energy_sampler=auto"
        in lines[0]
    )


def test_explicit_rapl_without_powercap_is_a_clear_error(tiny_model_path, tmp_path):
    _, env = scenario(tmp_path, [H100], init_error="library_not_found")
    proc, _ = llem(tmp_path, *WORK, "energy_sampler=rapl", env=env)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"energy_sampler=rapl: RAPL: no powercap tree at {tmp_path / 'no-powercap'}" in proc.stderr


def _real_nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


@pytest.mark.skipif(_real_nvml_works(), reason="this machine has NVML: energy is measured here")
def test_on_a_machine_without_energy_counters(tiny_model_path, tmp_path):
    """No NVML, no powercap: one clear line; an estimate with codecarbon, else none; throughput intact."""
    env = {k: v for k, v in os.environ.items() if k not in ("LLEM_FAKE_NVML", "CUDA_VISIBLE_DEVICES")}
    env["LLEM_POWERCAP_ROOT"] = str(tmp_path / "no-powercap")
    env["LLEM_USER_CONFIG"] = str(tmp_path / "no-user-config.yaml")
    proc, result = llem(
        tmp_path, "model=llem-tiny", "profile=quick", "dataset.n_prompts=2", "max_output_tokens=4", env=env
    )
    assert proc.returncode == 0, proc.stderr
    energy = result["energy"]
    lines = [line for line in proc.stderr.splitlines() if "energy: " in line and "warning" not in line]
    assert len(lines) == 1
    assert "NVML: library not found" in lines[0] and "RAPL: no powercap tree" in lines[0]
    if importlib.util.find_spec("codecarbon"):
        assert energy["method"] == "codecarbon-estimate" and energy["measured"] is False
        assert "an estimate, not a measurement" in lines[0]
        assert energy["energy_j"] > 0 and any(w.startswith("estimate only") for w in energy["warnings"])
        assert "gpu" not in energy["scope"]  # no GPU here (an installed amdsmi must not fake one)
    else:
        assert energy["method"] == "none" and energy["energy_j"] is None and energy["measured"] is False
        assert "energy: not measured: no energy source here" in lines[0]
        assert any(w.startswith("energy not measured") for w in result["warnings"])
    assert result["throughput"]["output_tokens_per_s"] > 0 and result["latency"]["ttft"]["count"] == 2
    assert result["telemetry"]["available"] is False
