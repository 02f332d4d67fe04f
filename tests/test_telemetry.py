"""Telemetry on the simulated GPUs: 10 Hz sampling, throttle and temperature summary, clocks, 1 Hz parquet."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from llem.results.schema import Telemetry as TelemetryBlock
from llem.telemetry.session import Telemetry
from llem.telemetry.throttle import HW_SLOWDOWN, SW_POWER_CAP, SW_THERMAL, summarize
from llem.telemetry.timeseries import COLUMNS
from tests.fakes.fixtures import install_fake_nvml

HOT = {
    "name": "NVIDIA H100 80GB HBM3",
    "uuid": "GPU-aaaa",
    "temperature_idle_c": 40.0,
    "temperature_loaded_c": 85.0,
    "temperature_tau_s": 1.0,  # heats fast: not thermally settled
    "throttle": [[0.4, 0.9, SW_THERMAL | SW_POWER_CAP], [1.2, 1.4, HW_SLOWDOWN]],
    "persistence": False,
}
COOL = {
    "name": "NVIDIA A100-SXM4-40GB",
    "uuid": "GPU-bbbb",
    "architecture": "ampere",
    "temperature_tau_s": 1000.0,
    "sm_clock_idle_mhz": 210.0,
    "sm_clock_boost_mhz": 1410.0,
    "memory_clock_mhz": 1215.0,
}


def sampled(monkeypatch, tmp_path, gpus: list[dict], seconds: float, write: bool) -> tuple[Telemetry, TelemetryBlock]:
    """Telemetry of the simulated ``gpus`` (all visible) over ``seconds``, its window from 0 to now."""
    install_fake_nvml(monkeypatch, tmp_path, gpus)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    telemetry = Telemetry.start()
    time.sleep(seconds)
    record, _ = telemetry.finish(0.0, time.time(), tmp_path, write=write)
    return telemetry, record


def test_throttling_drift_and_persistence_are_summarised_and_warned(monkeypatch, tmp_path):
    install_fake_nvml(monkeypatch, tmp_path, [HOT, COOL])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    telemetry = Telemetry.start()
    start = time.time()
    time.sleep(1.6)
    record, warnings = telemetry.finish(start, time.time(), tmp_path, write=True)
    assert record.available and record.hz == 10.0
    hot, cool = record.throttling.per_gpu["gpu0"], record.throttling.per_gpu["gpu1"]
    assert hot.thermal_s == pytest.approx(0.5, abs=0.15) and hot.power_s == pytest.approx(0.5, abs=0.15)
    assert hot.hw_slowdown_s == pytest.approx(0.2, abs=0.15) and hot.throttled
    assert hot.temperature_drift_c > 10 and hot.max_temperature_c <= 85
    assert not cool.throttled and abs(cool.temperature_drift_c) <= 1
    assert record.throttling.throttled and record.throttling.max_temperature_c == hot.max_temperature_c
    assert any(w.startswith("gpu0 throttled (thermal)") for w in warnings)
    assert any(w.startswith("gpu0 throttled (power)") for w in warnings)
    assert any(w.startswith("gpu0 throttled (hw slowdown)") for w in warnings)
    assert any(w.startswith("gpu0 temperature drifted") for w in warnings)
    assert any(w.startswith("persistence mode off on gpu0") for w in warnings)
    assert not any(w.startswith("gpu1") for w in warnings)
    # ~10 Hz per GPU
    assert 0.8 * 10 * 1.6 <= hot.samples <= 1.2 * 10 * 1.6 + 2


def test_timeseries_has_the_spec_columns_at_one_hertz(monkeypatch, tmp_path):
    _, record = sampled(monkeypatch, tmp_path, [HOT, {**COOL, "load_after_s": 1.2}], 2.3, write=True)
    table = pd.read_parquet(tmp_path / "timeseries.parquet")
    assert list(table.columns) == COLUMNS == record.timeseries.columns
    assert len(table) == record.timeseries.rows
    for _, rows in table.groupby("gpu_index"):
        assert 3 <= len(rows) <= 4  # one row per started second
        assert rows["timestamp_s"].diff().dropna().eq(1.0).all()
    hot = table[table["gpu_index"] == 0]
    assert hot["power_w"].between(300, 600).all() and (hot["memory_total_mb"] == 81559.0).all()
    # the second that held the throttle event ORs its reason bits
    assert (hot["throttle_reasons"].fillna(0).astype(int) & SW_THERMAL).any()
    # clocks (MHz, means over the second): the H100 boosts to 1980 and drops while power/thermal capped
    assert hot["sm_clock_mhz"].between(1755, 1980).all() and hot["sm_clock_mhz"].min() < 1980
    assert (hot["memory_clock_mhz"] == 2619.0).all()
    # the A100 idles at 210 MHz in its first (unloaded) second and boosts to 1410 in its last
    cool = table[table["gpu_index"] == 1]
    assert cool["sm_clock_mhz"].iloc[0] == 210.0 and cool["sm_clock_mhz"].iloc[-1] == 1410.0
    assert (cool["memory_clock_mhz"] == 1215.0).all()


def test_a_query_one_gpu_lacks_is_still_read_on_the_others(monkeypatch, tmp_path):
    no_utilisation = {**HOT, "unsupported": ["nvmlDeviceGetUtilizationRates"]}
    telemetry, record = sampled(monkeypatch, tmp_path, [no_utilisation, COOL], 0.5, write=False)
    assert record.unsupported_queries == ["utilisation@gpu0"]
    samples = telemetry.sampler.samples
    assert all(s.sm_utilisation_pct is None for s in samples if s.gpu_index == 0)
    assert all(s.sm_utilisation_pct is not None for s in samples if s.gpu_index == 1)


def test_clocks_a_gpu_cannot_report_are_null_in_the_timeseries_not_zero(monkeypatch, tmp_path):
    no_clocks = {**HOT, "unsupported": ["nvmlDeviceGetClockInfo"]}
    _, record = sampled(monkeypatch, tmp_path, [no_clocks, COOL], 0.5, write=True)
    assert {"sm_clock@gpu0", "memory_clock@gpu0"} <= set(record.unsupported_queries)
    table = pd.read_parquet(tmp_path / "timeseries.parquet")
    clocks = ["sm_clock_mhz", "memory_clock_mhz"]
    assert table.loc[table["gpu_index"] == 0, clocks].isna().all().all()
    assert (table.loc[table["gpu_index"] == 1, "memory_clock_mhz"] == 1215.0).all()


def test_without_nvml_telemetry_says_why(monkeypatch, tmp_path):
    install_fake_nvml(monkeypatch, tmp_path, [HOT], init_error="driver_not_loaded")
    record, warnings = Telemetry.start().finish(0.0, 1.0, tmp_path, write=True)
    assert record == TelemetryBlock(available=False, reason="NVML: NVIDIA driver not loaded")
    assert record.samples is None and record.throttling is None and record.timeseries is None
    assert warnings == [] and not (tmp_path / "timeseries.parquet").exists()


def test_summary_counts_only_the_window():
    from llem.telemetry.sampler import Sample

    samples = [Sample(t / 10, 0, 300.0, 50.0, 1.0, 2.0, 90.0, SW_POWER_CAP) for t in range(30)]
    summary, warnings = summarize(samples, 1.0, 2.0)
    assert summary.per_gpu["gpu0"].samples == 11
    assert summary.power_s == pytest.approx(1.0)
    assert warnings == ["gpu0 throttled (power) for 1.0 s in the window"]
