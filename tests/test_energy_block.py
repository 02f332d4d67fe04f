"""The energy block's arithmetic: adjusted energy, per-token figures, carbon, and no silent zero."""

from __future__ import annotations

import pytest

from llem.energy.base import DeviceEnergy, EnergyReading
from llem.energy.block import energy_block, unmeasured_block
from llem.energy.select import Selection
from llem.results.codec import to_data
from llem.results.schema import Baseline, Energy, Tokens
from llem.user_config import MeasurementSettings

TOKENS = Tokens(
    input_tokens=800,
    output_tokens=200,
    total_tokens=1000,
    requests=4,
    requests_stopped_by_eos=0,
    batches=1,
    counting="",
)


def reading(*energies: float | None, window_s: float = 20.0, **kw) -> EnergyReading:
    devices = [DeviceEnergy(f"gpu{i}", "gpu", e, f"GPU-{i}") for i, e in enumerate(energies)]
    return EnergyReading("nvml-counter", True, 1000.0, 1000.0 + window_s, devices, **kw)


def baseline(power_w: float) -> Baseline:
    return Baseline(measured=True, power_w=power_w)


def block(r: EnergyReading, base: Baseline | None = None, settings: MeasurementSettings | None = None) -> Energy:
    return energy_block(Selection("auto", None), r, base, TOKENS, settings or MeasurementSettings(), [])


def test_adjusted_and_per_token_figures():
    b = block(reading(3000.0, 1000.0), baseline(60.0))
    assert b.energy_j == 4000.0 and b.per_device_j == {"gpu0": 3000.0, "gpu1": 1000.0}
    assert b.window_s == 20.0 and b.avg_power_w == 200.0
    assert b.adjusted_energy_j == 4000.0 - 60.0 * 20.0
    assert b.energy_per_output_token_j == 20.0 and b.energy_per_token_j == 4.0
    assert b.tokens_per_joule == 200 / 4000.0
    assert b.adjusted_energy_per_output_token_j == 2800.0 / 200
    assert to_data(b.window) == {"start_unix_s": 1000.0, "end_unix_s": 1020.0, "duration_s": 20.0}
    assert b.scope == ["gpu"] and b.measured is True and b.warnings == []


def test_baseline_above_raw_clamps_to_zero_with_a_warning():
    b = block(reading(500.0), baseline(60.0))
    assert b.adjusted_energy_j == 0.0 and b.energy_j == 500.0
    assert any(w.startswith("baseline above raw") for w in b.warnings)


def test_dropped_device_gives_null_energy_never_zero():
    b = block(reading(3000.0, None, warnings=["gpu1: the energy counter went backwards"]), baseline(10.0))
    for key in ("energy_j", "adjusted_energy_j", "energy_per_output_token_j", "tokens_per_joule", "carbon_gco2e"):
        assert getattr(b, key) is None, key
    assert b.per_device_j == {"gpu0": 3000.0, "gpu1": None}
    assert any("went backwards" in w for w in b.warnings)


def test_short_window_and_estimate_warnings():
    r = EnergyReading("codecarbon-estimate", False, 0.0, 2.0, [DeviceEnergy("cpu", "cpu", 30.0, "x")])
    b = block(r)
    assert b.measured is False and b.adjusted_energy_j is None
    assert any(w.startswith("estimate only") for w in b.warnings)
    assert any("under 10 s" in w for w in b.warnings)


def test_carbon_from_intensity_and_pue():
    settings = MeasurementSettings(carbon_intensity_gco2_kwh=400.0, datacenter_pue=1.2, datacenter_location="DEU")
    b = block(reading(3.6e6), settings=settings)  # 1 kWh
    assert b.carbon_gco2e == pytest.approx(480.0)
    assert b.carbon.pue == 1.2 and b.carbon.location == "DEU"
    assert block(reading(3.6e6)).carbon is None  # no intensity configured: no carbon figure


def test_unmeasured_block_is_all_null_with_a_reason():
    b = unmeasured_block(Selection("auto", None, {"nvml": "NVML: library not found"}), "no source", None)
    assert b.method == "none" and b.measured is False and b.reason == "no source"
    assert b.energy_j is None and b.sampler.unavailable == {"nvml": "NVML: library not found"}
    assert b.warnings == ["energy not measured: no source"]
    said = "not measured: no energy source here (NVML: library not found); energy figures are null"
    assert unmeasured_block(Selection("auto", None), said, None).warnings == [f"energy {said}"]  # said once
    assert unmeasured_block(Selection(None, None), "null", None).warnings == []


def test_unmeasured_block_has_every_field_of_a_measured_one():
    measured = to_data(block(reading(3000.0), baseline(60.0)))
    unmeasured = to_data(unmeasured_block(Selection("auto", None), "no source", Baseline(measured=False, reason="x")))
    assert list(unmeasured) == list(measured)
    assert list(unmeasured["baseline"]) == list(measured["baseline"])
    nulls = [k for k, v in unmeasured.items() if v is None]
    assert {"energy_j", "window", "window_s", "adjusted_energy_j", "tokens_per_joule", "carbon"} <= set(nulls)
    assert unmeasured["denominators"] == measured["denominators"]


def test_reading_warnings_and_extra_flow_through():
    b = block(reading(3000.0, warnings=["power trace under-sampled"], extra={"poll_hz": 10}), baseline(60.0))
    assert "power trace under-sampled" in b.warnings and b.extra == {"poll_hz": 10}
