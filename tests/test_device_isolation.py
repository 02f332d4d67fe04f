"""The device-isolation check: other processes on the job's GPUs, found through (simulated) NVML."""

from __future__ import annotations

import os

import pytest

from llem.config.schema import DeviceIsolation
from llem.runners.isolation import GpuInUseError, check_devices
from tests.fakes.fixtures import install_fake_nvml
from tests.fakes.gpus import A100, H100
from tests.test_energy_e2e import llem, scenario

STRANGER = {"pid": 4242, "used_memory_mb": 2048}


@pytest.fixture
def two_gpus(monkeypatch, tmp_path):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return install_fake_nvml(
        monkeypatch, tmp_path, [{**H100, "processes": [{"pid": os.getpid(), "used_memory_mb": 300}]},
                                {**A100, "processes": [STRANGER]}]
    )  # fmt: skip


def test_foreign_processes_are_found_and_own_ones_ignored(two_gpus):
    check = check_devices(DeviceIsolation.warn)
    assert check.checked and [(p["gpu"], p["pid"], p["used_memory_mb"]) for p in check.foreign] == [
        ("gpu1", 4242, 2048.0)
    ]
    (warning,) = check.warnings()
    assert warning.startswith("gpu1 is also used by pid 4242") and "2048 MiB" in warning


def test_only_the_jobs_gpus_are_checked(two_gpus, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    check = check_devices(DeviceIsolation.error)
    assert check.checked and check.foreign == []


def test_an_engine_with_a_gpu_count_is_checked_on_its_first_gpus_only(two_gpus):
    """vLLM with tensor x pipeline parallel size 1 uses GPU 0 alone: the stranger on GPU 1 does not matter."""
    assert check_devices(DeviceIsolation.error, gpu_limit=1).foreign == []
    assert len(check_devices(DeviceIsolation.warn, gpu_limit=2).foreign) == 1


def test_error_mode_refuses_busy_gpus(two_gpus):
    with pytest.raises(GpuInUseError, match=r"pid 4242.*CUDA_VISIBLE_DEVICES.*device_isolation=warn"):
        check_devices(DeviceIsolation.error)


def test_off_and_no_nvml_are_recorded_as_not_checked(two_gpus, monkeypatch, tmp_path):
    assert check_devices(DeviceIsolation.off).record()["reason"] == "runner.device_isolation is off"
    install_fake_nvml(monkeypatch, tmp_path, [H100], init_error="library_not_found")
    check = check_devices(DeviceIsolation.error)
    assert not check.checked and check.reason == "NVML: library not found"


def test_a_foreign_process_becomes_a_measurement_warning(tiny_model_path, tmp_path):
    _, env = scenario(tmp_path, [{**H100, "processes": [STRANGER]}])
    proc, result = llem(tmp_path, "model=llem-tiny", "warmup.n_warmup=0", "baseline.enabled=false", env=env)
    assert proc.returncode == 0, proc.stderr
    assert any(w.startswith("gpu0 is also used by pid 4242") for w in result["warnings"])


def test_error_mode_fails_the_job_before_any_worker_starts(tiny_model_path, tmp_path):
    _, env = scenario(tmp_path, [{**H100, "processes": [STRANGER]}])
    proc, result = llem(tmp_path, "model=llem-tiny", "runner.device_isolation=error", env=env)
    assert proc.returncode == 1 and result is None and "Traceback" not in proc.stderr
    status = (tmp_path / "run" / "status.json").read_text()
    assert "GpuInUseError" in status and "pid 4242" in status and '"worker"' not in status
