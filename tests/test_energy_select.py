"""auto's choice and its reasons; explicit choices that cannot run are one-line user errors."""

from __future__ import annotations

import sys

import pytest

from llem.config.schema import EnergySampler as Choice
from llem.energy.base import EnergySamplerError
from llem.energy.select import select_sampler
from llem.user_config import MeasurementSettings
from tests.fakes.fixtures import install_fake_nvml
from tests.fakes.powercap import FakePowercap


@pytest.fixture
def no_zeus(monkeypatch):
    monkeypatch.setitem(sys.modules, "zeus", None)  # `import zeus` raises ImportError
    monkeypatch.setitem(sys.modules, "zeus.monitor", None)


@pytest.fixture
def no_codecarbon(monkeypatch):
    monkeypatch.setitem(sys.modules, "codecarbon", None)


def test_auto_prefers_nvml_over_rapl_and_says_why_zeus_was_passed_over(monkeypatch, tmp_path, no_zeus):
    install_fake_nvml(monkeypatch, tmp_path, [{}])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    FakePowercap(tmp_path / "powercap")
    selection = select_sampler(Choice.auto, MeasurementSettings(powercap_root=str(tmp_path / "powercap")))
    assert selection.chosen == "nvml" and selection.sampler.method == "nvml-counter"
    assert selection.unavailable == {"zeus": "Zeus: package not installed"}
    assert "passed over: Zeus: package not installed" in selection.summary()


def test_auto_falls_to_rapl_then_to_none_with_every_reason(monkeypatch, tmp_path, no_zeus, no_codecarbon):
    install_fake_nvml(monkeypatch, tmp_path, [{}], init_error="library_not_found")
    FakePowercap(tmp_path / "powercap")
    selection = select_sampler(Choice.auto, MeasurementSettings(powercap_root=str(tmp_path / "powercap")))
    assert selection.chosen == "rapl"
    assert selection.unavailable["nvml"] == "NVML: library not found"

    nothing = select_sampler(Choice.auto, MeasurementSettings(powercap_root=str(tmp_path / "absent")))
    assert nothing.sampler is None
    assert list(nothing.unavailable) == ["zeus", "nvml", "rapl", "codecarbon"]
    assert nothing.unavailable["codecarbon"] == "codecarbon: package not installed"
    line = nothing.summary()
    assert line.startswith("energy: not measured: no energy source here (") and "\n" not in line
    assert "RAPL: no powercap tree at" in line


@pytest.mark.parametrize(
    ("choice", "reason", "fix"),
    [
        (Choice.nvml, "NVML: library not found", "install the NVIDIA driver"),
        (Choice.zeus, "Zeus: package not installed", "pip install 'llem[zeus]'"),
        (Choice.codecarbon, "codecarbon: package not installed", "pip install 'llem[codecarbon]'"),
    ],
)
def test_explicit_sampler_that_cannot_run_is_a_clear_error(
    monkeypatch, tmp_path, no_zeus, no_codecarbon, choice, reason, fix
):
    install_fake_nvml(monkeypatch, tmp_path, [{}], init_error="library_not_found")
    with pytest.raises(EnergySamplerError) as err:
        select_sampler(choice, MeasurementSettings())
    message = str(err.value)
    assert message.startswith(f"energy_sampler={choice.value}: {reason}")
    assert fix in message and "energy_sampler=auto" in message and "\n" not in message


def test_null_sampler_is_throughput_only():
    selection = select_sampler(None, MeasurementSettings())
    assert selection.sampler is None and selection.requested is None
    assert selection.summary() == "energy: not measured (energy_sampler=null: throughput only)"
