"""Polled power traces: time-weighted statistics and the aliasing check, on traces with exact times."""

from __future__ import annotations

import math

import pytest

from llem.energy.polling import trace_stats, trapezoid_j, unresolved_trace_warning
from tests.fakes.nvml.fake_gpu import FakeDevice

HZ = 10.0


def polled(device: FakeDevice, seconds: float, hz: float = HZ, start: float = 0.0) -> tuple[list[float], list[float]]:
    """What polling at ``hz`` reads from a simulated GPU, at exact times (no scheduling jitter)."""
    times = [start + i / hz for i in range(int(seconds * hz) + 1)]
    return times, [device.power_w(t) for t in times]


BURSTS = FakeDevice(loaded_w=450.0, between_w=150.0, load_period_s=0.3, load_duty=0.5, ripple_w=0.0)


def test_trapezoid_rule_is_exact_for_linear_power():
    assert trapezoid_j([0.0, 1.0, 3.0], [100.0, 200.0, 0.0]) == pytest.approx(150.0 + 200.0)


def test_square_wave_at_10hz_is_aliased_and_says_so():
    times, powers = polled(BURSTS, 3.0, start=0.01)
    known_w = (BURSTS.energy_j(times[-1]) - BURSTS.energy_j(times[0])) / (times[-1] - times[0])
    polled_w = trace_stats(times, powers).mean_w
    assert abs(polled_w / known_w - 1) > 0.15  # the bias the warning is about (two of three samples high)
    warning = unresolved_trace_warning("gpu0", times, powers, HZ)
    assert warning and warning.startswith("gpu0: power polled at 10 Hz") and "aliasing" in warning


@pytest.mark.parametrize("phase_s", [0.0, 0.01, 0.05, 0.12])
def test_square_wave_is_flagged_whatever_the_phase_and_with_jittered_polling(phase_s):
    times = [phase_s + i / HZ + 0.03 * math.sin(7.3 * i) for i in range(40)]  # late and early samples
    assert unresolved_trace_warning("gpu0", times, [BURSTS.power_w(t) for t in times], HZ)


@pytest.mark.parametrize(
    "device",
    [
        pytest.param(FakeDevice(), id="loaded-with-1.7s-ripple"),
        pytest.param(FakeDevice(ripple_w=35.0, ripple_period_s=0.9), id="ripple-9-samples-a-period"),
        pytest.param(FakeDevice(load_after_s=1.3, load_until_s=2.2), id="load-steps-up-and-down"),
        pytest.param(FakeDevice(load_after_s=1e9), id="idle"),
        pytest.param(FakeDevice(load_period_s=4.0, ripple_w=5.0), id="slow-bursts"),
    ],
)
def test_resolved_traces_give_no_warning(device):
    times, powers = polled(device, 3.0)
    assert unresolved_trace_warning("gpu0", times, powers, HZ) is None


def test_too_few_samples_are_not_judged():
    times, powers = polled(BURSTS, 0.5)
    assert unresolved_trace_warning("gpu0", times, powers, HZ) is None


def test_trace_stats_weight_each_sample_by_the_time_it_stands_for():
    # 100 W for 9 s (two samples 9 s apart), then 300 W sampled densely for 1 s: a plain mean says ~282 W.
    times = [0.0, 9.0] + [9.0 + 0.1 * i for i in range(1, 11)]
    powers = [100.0, 100.0] + [300.0] * 10
    stats = trace_stats(times, powers)
    assert stats.span_s == pytest.approx(10.0) and stats.samples == 12
    assert stats.mean_w == pytest.approx((100.0 * 9 + 200.0 * 0.1 + 300.0 * 0.9) / 10.0)
    assert 0 < stats.std_w < 100.0


def test_trace_stats_of_one_sample():
    stats = trace_stats([5.0], [70.0])
    assert (stats.mean_w, stats.std_w, stats.span_s, stats.samples) == (70.0, 0.0, 0.0, 1)


def test_fake_square_wave_energy_is_the_integral_of_its_power():
    device = FakeDevice(load_after_s=0.37, load_until_s=5.2, load_period_s=0.3, between_w=60.0, ripple_w=25.0)
    for a, b in [(0.0, 1.0), (0.5, 0.61), (0.2, 6.0)]:
        n = 20_000
        numeric = sum(device.power_w(a + (i + 0.5) * (b - a) / n) for i in range(n)) * (b - a) / n
        assert device.energy_j(b) - device.energy_j(a) == pytest.approx(numeric, rel=1e-3)


class ZeusPowerMonitorStandIn:
    """Zeus's ``PowerMonitor`` as llem reads it (``get_power_timeline``, ``gpu_update_period``),
    replaying simulated GPUs; Zeus itself is an optional extra, not installed on every machine."""

    gpu_update_period = 0.1

    def __init__(self, devices: list[FakeDevice]) -> None:
        self.devices = devices

    def get_power_timeline(self, domain: str, gpu_index: int, start_time: float, end_time: float) -> dict:
        times, powers = polled(self.devices[gpu_index], end_time - start_time, start=start_time)
        return {gpu_index: list(zip(times, powers))}


class ZeusMonitorStandIn:
    def __init__(self, devices: list[FakeDevice], counters: list[bool]) -> None:
        self.power_monitor = ZeusPowerMonitorStandIn(devices)
        self.gpus = type("Gpus", (), {"supports_get_total_energy_consumption": lambda _, i: counters[i]})()


def test_zeus_polled_gpus_are_checked_and_counter_gpus_are_not():
    from llem.energy.devices import Gpu
    from llem.energy.zeus import polled_trace_warnings

    gpus = [Gpu(i, i, f"GPU-{i}", "P100", None) for i in range(3)]
    monitor = ZeusMonitorStandIn([BURSTS, FakeDevice(), BURSTS], counters=[False, False, True])
    warnings = polled_trace_warnings(monitor, gpus, 0.0, 3.0)
    assert len(warnings) == 1 and warnings[0].startswith("gpu0 (Zeus): power polled at 10 Hz")


def test_a_zeus_without_power_timeline_says_the_check_was_not_made():
    from llem.energy.devices import Gpu
    from llem.energy.zeus import polled_trace_warnings

    monitor = ZeusMonitorStandIn([BURSTS], counters=[False])
    monitor.power_monitor = object()
    warnings = polled_trace_warnings(monitor, [Gpu(0, 0, "GPU-0", "P100", None)], 0.0, 3.0)
    assert len(warnings) == 1 and "aliasing not checked" in warnings[0]
