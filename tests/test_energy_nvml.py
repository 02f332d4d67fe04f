"""llem's NVML sampler and device mapping against the simulated GPUs (fake pynvml, in-process)."""

from __future__ import annotations

import time

import pytest

from llem.energy.base import SamplerUnavailable
from llem.energy.devices import device_warnings, init_nvml, visible_gpus
from llem.energy.nvml import NvmlSampler
from llem.user_config import MeasurementSettings
from tests.fakes.fixtures import install_fake_nvml
from tests.fakes.gpus import A100, H100, P100, P100_BURSTS


def window(sampler: NvmlSampler, seconds: float):
    sampler.begin_window()
    time.sleep(seconds)
    return sampler.end_window()


def assert_within_1pct(measured: float | None, known: float) -> None:
    assert measured is not None
    assert abs(measured - known) <= 0.01 * known, (measured, known)


def test_counter_energy_matches_the_simulation_per_device_and_summed(monkeypatch, tmp_path):
    scenario = install_fake_nvml(monkeypatch, tmp_path, [H100, A100])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    sampler = NvmlSampler.open(MeasurementSettings())
    assert sampler.method == "nvml-counter"
    reading = window(sampler, 0.6)
    known = [scenario.energy_between_j(i, reading.start_unix_s, reading.end_unix_s) for i in range(2)]
    for device, expected in zip(reading.devices, known):
        assert_within_1pct(device.energy_j, expected)
    assert_within_1pct(reading.energy_j, sum(known))
    assert [d.label for d in reading.devices] == ["gpu0", "gpu1"]
    assert reading.devices[1].identity == A100["uuid"] and reading.power_samples is None
    # loaded H100 ~450 W, A100 ~310 W: realistic magnitudes, not a unit slip
    assert 300 < reading.devices[0].energy_j / reading.window_s < 600
    sampler.close()


def test_gpu_without_counter_falls_back_to_power_integration(monkeypatch, tmp_path):
    scenario = install_fake_nvml(monkeypatch, tmp_path, [H100, P100])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    sampler = NvmlSampler.open(MeasurementSettings())
    assert sampler.method == "nvml-power-integration"
    assert any("no energy counter on gpu1" in note for note in sampler.notes())
    reading = window(sampler, 1.5)
    for i, device in enumerate(reading.devices):
        assert_within_1pct(device.energy_j, scenario.energy_between_j(i, reading.start_unix_s, reading.end_unix_s))
    # >= 10 Hz polling plus both ends
    assert reading.power_samples >= 10 * 1.5 * 0.8
    assert not any("power samples" in w for w in reading.warnings)


def test_short_power_window_warns_about_too_few_samples(monkeypatch, tmp_path):
    install_fake_nvml(monkeypatch, tmp_path, [P100])
    sampler = NvmlSampler.open(MeasurementSettings())
    reading = window(sampler, 0.15)
    assert reading.energy_j and reading.energy_j > 0
    assert any("power samples" in w for w in reading.warnings)


def test_counter_wrap_drops_that_gpu_with_a_warning_and_nulls_the_sum(monkeypatch, tmp_path):
    # H100 loaded at ~450 W: the counter passes its wrap point 0.3 s after the epoch.
    epoch = time.time()
    wrap_mj = 10_000_000
    wrapping = {**H100, "counter_wrap_mj": wrap_mj, "counter_offset_mj": wrap_mj - 135_000, "ripple_w": 0.0}
    install_fake_nvml(monkeypatch, tmp_path, [wrapping, A100], epoch_unix_s=epoch)
    sampler = NvmlSampler.open(MeasurementSettings())
    reading = window(sampler, 0.6)
    wrapped, fine = reading.devices
    assert wrapped.energy_j is None and fine.energy_j and fine.energy_j > 0
    assert any("gpu0" in w and "went backwards" in w for w in reading.warnings)
    assert reading.energy_j is None  # never a partial sum


def test_counter_that_does_not_tick_is_dropped_not_zero(monkeypatch, tmp_path):
    install_fake_nvml(monkeypatch, tmp_path, [{**H100, "counter_update_s": 5.0}])
    sampler = NvmlSampler.open(MeasurementSettings())
    reading = window(sampler, 0.05)
    assert reading.devices[0].energy_j is None and reading.energy_j is None
    assert any("did not tick" in w for w in reading.warnings)


def test_idle_power_of_counter_and_polled_gpus(monkeypatch, tmp_path):
    idle = {"load_after_s": 1e9, "idle_ripple_w": 0.2}  # never loaded: idle the whole time, nearly flat
    install_fake_nvml(monkeypatch, tmp_path, [{**H100, **idle}, {**P100, **idle}])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    counter = NvmlSampler.open(MeasurementSettings()).idle_power(1.0)
    assert counter.count == 2 and abs(counter.power_w - 70.0) < 0.7
    assert counter.duration_s >= 1.0  # the windows' own lengths, each at least its sleep
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    sampler = NvmlSampler.open(MeasurementSettings())
    polled = sampler.idle_power(1.0)
    assert polled.count >= 10 and abs(polled.power_w - 31.0) < 0.31 and polled.std_w > 0
    times = sampler.poller.times_s
    assert polled.duration_s == times[-1] - times[0] and polled.duration_s >= 1.0  # measured, not asked for
    assert polled.warnings == []


def test_bursty_load_polled_at_10hz_warns_about_aliasing(monkeypatch, tmp_path):
    """A 0.3 s square wave (205 W / 60 W) read at 10 Hz: two samples in three fall in the same phase."""
    install_fake_nvml(monkeypatch, tmp_path, [P100_BURSTS])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    reading = window(NvmlSampler.open(MeasurementSettings()), 3.0)
    assert reading.method == "nvml-power-integration"
    assert any(w.startswith("gpu0: power polled at 10 Hz") and "aliasing" in w for w in reading.warnings)


def test_steady_load_polled_at_10hz_gives_no_aliasing_warning(monkeypatch, tmp_path):
    install_fake_nvml(monkeypatch, tmp_path, [{**P100, "ripple_w": 3.0}])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    reading = window(NvmlSampler.open(MeasurementSettings()), 3.0)
    assert reading.energy_j and not any("aliasing" in w for w in reading.warnings)


def test_polled_idle_baseline_under_a_bursty_neighbour_warns(monkeypatch, tmp_path):
    install_fake_nvml(monkeypatch, tmp_path, [P100_BURSTS])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    idle = NvmlSampler.open(MeasurementSettings()).idle_power(3.0)
    assert len(idle.warnings) == 1 and idle.warnings[0].startswith("idle baseline of gpu0: power polled at 10 Hz")


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        ("2,0", [(0, 2), (1, 0)]),
        ("GPU-22222222", [(0, 1)]),  # a UUID prefix, as CUDA accepts
        ("1,-1,0", [(0, 1)]),  # CUDA stops at the first invalid entry
    ],
)
def test_cuda_visible_devices_maps_to_nvml(monkeypatch, tmp_path, visible, expected):
    third = {**H100, "uuid": "GPU-44444444-dddd-4000-8000-000000000004"}
    install_fake_nvml(monkeypatch, tmp_path, [H100, A100, third])
    gpus = visible_gpus(init_nvml(), {"CUDA_VISIBLE_DEVICES": visible})
    assert [(g.cuda_index, g.nvml_index) for g in gpus] == expected


def test_mig_instance_measures_its_parent_gpu_with_a_warning(monkeypatch, tmp_path):
    mig = "MIG-7f3c2a10-5b7e-5d4c-9a61-0123456789ab"
    install_fake_nvml(monkeypatch, tmp_path, [H100, {**A100, "mig": [mig]}])
    gpus = visible_gpus(init_nvml(), {"CUDA_VISIBLE_DEVICES": mig})
    assert gpus[0].nvml_index == 1 and gpus[0].uuid == A100["uuid"] and gpus[0].mig_uuid == mig
    assert "whole GPU" in device_warnings(gpus, {"CUDA_VISIBLE_DEVICES": mig})[0]


@pytest.mark.parametrize(
    ("env", "extra", "reason"),
    [
        ({"CUDA_VISIBLE_DEVICES": ""}, {}, "hides every GPU"),
        ({"CUDA_VISIBLE_DEVICES": "5"}, {}, "only 2 exist"),
        ({"CUDA_VISIBLE_DEVICES": "GPU-ffff"}, {}, "matches no GPU"),
        ({}, {"init_error": "library_not_found"}, "NVML: library not found"),
        ({}, {"init_error": "driver_not_loaded"}, "NVML: NVIDIA driver not loaded"),
    ],
)
def test_unavailable_nvml_gives_a_short_reason(monkeypatch, tmp_path, env, extra, reason):
    install_fake_nvml(monkeypatch, tmp_path, [H100, A100], **extra)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SamplerUnavailable, match=reason):
        NvmlSampler.open(MeasurementSettings())


def test_environment_gpu_facts_follow_cuda_visible_devices(monkeypatch, tmp_path):
    from llem.environment import _add_nvml_facts

    install_fake_nvml(monkeypatch, tmp_path, [H100, {**A100, "persistence": False, "power_limit_w": 400.0}])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    gpus = [{"index": 0}]
    _add_nvml_facts(gpus)
    assert gpus[0]["uuid"] == A100["uuid"] and gpus[0]["nvml_index"] == 1
    assert gpus[0]["power_limit_w"] == 400.0 and gpus[0]["persistence_mode"] is False


def test_aliasing_warnings_reach_result_json(tiny_model_path, tmp_path):
    """`python -m llem` on a GPU without counter running 0.3 s bursts: the energy block and its
    baseline both say the polling did not resolve the load, and the baseline records its own span."""
    from tests.test_energy_e2e import WORK, llem, scenario

    _, env = scenario(tmp_path, [P100_BURSTS])
    work = [arg for arg in WORK if not arg.startswith("baseline.")]
    args = ["baseline.strategy=fresh", "baseline.duration_seconds=5", "energy_sampler=nvml", "gpu_telemetry=false"]
    proc, result = llem(tmp_path, *work, *args, env=env)
    assert proc.returncode == 0, proc.stderr
    energy = result["energy"]
    assert energy["method"] == "nvml-power-integration"
    assert any(w.startswith("gpu0: power polled at 10 Hz") and "aliasing" in w for w in energy["warnings"])
    baseline = energy["baseline"]
    assert any(w.startswith("idle baseline of gpu0") for w in baseline["warnings"])
    assert baseline["requested_duration_s"] == 5.0 and baseline["duration_s"] >= 5.0
