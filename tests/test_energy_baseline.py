"""Idle baseline strategies (fresh, cached with TTL, validated with spot-checks) on the fake powercap tree."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from llem.config.schema import BaselineConfig, BaselineStrategy
from llem.energy.baseline import cache_path, obtain_baseline
from llem.energy.rapl import RaplSampler
from llem.user_config import MeasurementSettings
from tests.fakes.powercap import FakePowercap, default_zones

IDLE_W = 42.0 + 7.5 + 20.0  # the counted zones of the default tree


def tree(root, scale: float = 1.0) -> FakePowercap:
    return FakePowercap(root, [replace(z, power_w=z.power_w * scale) for z in default_zones()])


def idle_tolerance_w(fake: FakePowercap, record: dict, power_w: float) -> float:
    """1 % of ``power_w``, plus what a stale read at each end of every idle window can hide."""
    window_s = record["duration_s"] / record["samples"]
    return 0.01 * power_w + power_w * 2 * fake.max_write_gap_s() / window_s


def sampler(root) -> RaplSampler:
    return RaplSampler.open(MeasurementSettings(powercap_root=str(root)))


def config(strategy: BaselineStrategy, **kw) -> BaselineConfig:
    return BaselineConfig(duration_seconds=2.0, strategy=strategy, **kw)


def test_fresh_measures_every_time(tmp_path):
    with tree(tmp_path / "a") as fake:
        first = obtain_baseline(config(BaselineStrategy.fresh), sampler(tmp_path / "a"), tmp_path / "cache")
    assert first["source"] == "measured" and first["cache_age_s"] is None
    assert first["power_w"] == pytest.approx(IDLE_W, abs=idle_tolerance_w(fake, first, IDLE_W))
    assert first["samples"] == 4 and first["method"] == "rapl"
    # the time actually measured (four windows, each at least its 0.5 s sleep), and what was asked for
    assert first["duration_s"] >= 2.0 and first["duration_s"] != 2.0
    assert first["requested_duration_s"] == 2.0 and first["warnings"] == []
    assert not (tmp_path / "cache").exists()  # fresh never caches


def test_cached_reuses_until_the_ttl_expires(tmp_path):
    cache = tmp_path / "cache"
    cfg = config(BaselineStrategy.cached, cache_ttl_seconds=60.0)
    with tree(tmp_path / "a"):
        s = sampler(tmp_path / "a")
        first = obtain_baseline(cfg, s, cache)
        second = obtain_baseline(cfg, s, cache)
        assert first["source"] == "measured (no cached baseline)"
        assert second["source"] == "cache" and second["power_w"] == first["power_w"]
        assert 0 <= second["cache_age_s"] < 60
        path = cache_path(s, cache)
        data = json.loads(path.read_text())
        data["measured_at_unix_s"] -= 120  # older than the TTL
        path.write_text(json.dumps(data))
        third = obtain_baseline(cfg, s, cache)
    assert third["source"].startswith("measured (cached baseline expired")


def test_validated_spot_checks_and_remeasures_on_drift(tmp_path):
    cache = tmp_path / "cache"
    cfg = config(BaselineStrategy.validated, validation_interval=2, drift_threshold=0.10)
    with tree(tmp_path / "a") as fake_a:
        first = obtain_baseline(cfg, sampler(tmp_path / "a"), cache)
        assert first["source"].startswith("measured")
        assert obtain_baseline(cfg, sampler(tmp_path / "a"), cache)["source"] == "cache"
    # Same machine and zones, idle power 5 % higher: the spot-check passes and keeps the cache.
    with tree(tmp_path / "b", scale=1.05) as fake_b:
        checked = obtain_baseline(cfg, sampler(tmp_path / "b"), cache)
    assert checked["source"].startswith("cache, spot-checked")
    # the drift of two readings, each as exact as its fake's writes allowed
    spread_w = idle_tolerance_w(fake_a, first, IDLE_W) * 1.05 + idle_tolerance_w(
        fake_b, checked["spot_check"], 1.05 * IDLE_W
    )
    assert checked["spot_check"]["drift"] == pytest.approx(0.05, abs=spread_w / first["power_w"])
    assert checked["power_w"] == first["power_w"]
    # Idle power 50 % higher: two experiments later the spot-check drifts and the baseline is re-measured.
    with tree(tmp_path / "c", scale=1.5) as fake:
        assert obtain_baseline(cfg, sampler(tmp_path / "c"), cache)["source"] == "cache"
        drifted = obtain_baseline(cfg, sampler(tmp_path / "c"), cache)
        assert drifted["source"].startswith("re-measured: spot-check drifted")
        assert drifted["power_w"] == pytest.approx(1.5 * IDLE_W, abs=idle_tolerance_w(fake, drifted, 1.5 * IDLE_W))
        after = obtain_baseline(cfg, sampler(tmp_path / "c"), cache)
    assert after["source"] == "cache" and after["power_w"] == drifted["power_w"]


def test_cache_is_keyed_by_devices(tmp_path):
    with tree(tmp_path / "a"):
        s = sampler(tmp_path / "a")
    other = sampler(tmp_path / "a")
    other.zones = other.zones[:1]
    assert cache_path(s, tmp_path) != cache_path(other, tmp_path)


def test_polled_baseline_is_time_weighted_and_carries_its_aliasing_warning(monkeypatch, tmp_path):
    """A GPU without energy counter idles next to a neighbour's 0.3 s bursts: the record says so."""
    from llem.energy.nvml import NvmlSampler
    from tests.fakes.fixtures import install_fake_nvml
    from tests.fakes.gpus import P100, P100_BURSTS

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    install_fake_nvml(monkeypatch, tmp_path, [{**P100, "load_after_s": 1e9, "idle_ripple_w": 0.5}])
    steady = obtain_baseline(config(BaselineStrategy.fresh), NvmlSampler.open(MeasurementSettings()))
    assert steady["method"] == "nvml-power-integration" and steady["warnings"] == []
    assert steady["power_w"] == pytest.approx(31.0, rel=0.01) and steady["duration_s"] >= 2.0
    install_fake_nvml(monkeypatch, tmp_path, [P100_BURSTS])
    bursty = obtain_baseline(config(BaselineStrategy.fresh), NvmlSampler.open(MeasurementSettings()))
    assert len(bursty["warnings"]) == 1 and "aliasing" in bursty["warnings"][0]
