"""llem's powercap (RAPL) reader against a fake tree whose writer advances energy_uj at known rates."""

from __future__ import annotations

import os
import time

import pytest

from llem.config.schema import EnergySampler as Choice
from llem.energy import rapl
from llem.energy.base import EnergySamplerError, SamplerUnavailable
from llem.energy.rapl import RaplSampler, advance_uj, discover_zones
from llem.energy.select import select_sampler
from llem.user_config import MeasurementSettings
from tests.fakes.powercap import COUNTED, FakePowercap


def test_discovers_packages_and_dram_only(tmp_path):
    FakePowercap(tmp_path)
    zones = discover_zones(tmp_path)
    assert [(z.label, z.scope, z.name) for z in zones] == [
        ("cpu0", "cpu", "package-0"),
        ("dram0", "dram", "dram"),
        ("cpu1", "cpu", "package-1"),  # AMD-style package: no DRAM zone of its own
    ]


def test_energy_matches_the_known_rates_across_a_wrap(tmp_path):
    # cpu1 (20 W, range 50 J) starts 5 J below its wrap point and wraps about every 2.5 s.
    with FakePowercap(tmp_path) as tree:
        sampler = RaplSampler.open(MeasurementSettings(powercap_root=str(tmp_path)))
        sampler.poll_s = 0.25
        sampler.begin_window()
        time.sleep(3.0)
        reading = sampler.end_window()
    assert reading.method == "rapl" and reading.measured
    by_label = {d.label: d for d in reading.devices}
    for path, label in COUNTED.items():
        known = tree.energy_between_j(path, reading.start_unix_s, reading.end_unix_s)
        tolerance = tree.tolerance_j(path, reading.start_unix_s, reading.end_unix_s)
        assert abs(by_label[label].energy_j - known) <= tolerance, (label, by_label[label].energy_j, known)
    assert sorted({d.scope for d in reading.devices}) == ["cpu", "dram"]
    assert reading.energy_j == pytest.approx(sum(d.energy_j for d in reading.devices))


def test_idle_power_is_the_sum_of_zone_powers(tmp_path):
    with FakePowercap(tmp_path):
        idle = RaplSampler.open(MeasurementSettings(powercap_root=str(tmp_path))).idle_power(1.5)
    assert idle.count == 3
    assert abs(idle.power_w - (42.0 + 7.5 + 20.0)) <= 0.01 * 69.5


def test_advance_allows_one_wrap():
    assert advance_uj(100, 250, 1000) == 150
    assert advance_uj(900, 50, 1000) == 151  # 900 -> 1000, wrap to 0, -> 50


def test_missing_tree_and_empty_tree_give_reasons(tmp_path):
    with pytest.raises(SamplerUnavailable, match="no powercap tree at"):
        discover_zones(tmp_path / "absent")
    with pytest.raises(SamplerUnavailable, match="no package zone"):
        discover_zones(tmp_path)


def test_unreadable_energy_file_is_reported_with_the_fix(tmp_path, monkeypatch):
    FakePowercap(tmp_path)
    target = tmp_path / "intel-rapl:0" / "energy_uj"
    if os.geteuid() == 0:  # root reads any file: simulate the kernel's root-only energy_uj
        real_open = open

        def deny(path, *args, **kwargs):
            if os.fspath(path) == os.fspath(target):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(rapl, "open", deny, raising=False)
    else:
        target.chmod(0)
    with pytest.raises(EnergySamplerError) as err:
        select_sampler(Choice.rapl, MeasurementSettings(powercap_root=str(tmp_path)))
    message = str(err.value)
    assert message.startswith("energy_sampler=rapl: RAPL: ")
    assert "energy_uj is not readable (permission denied)" in message and "chmod" in message
    assert "\n" not in message
