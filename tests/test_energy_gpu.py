"""On a real NVIDIA GPU: the NVML counter against Zeus and against power integration, same window.

Skipped without CUDA. The three readers open their windows back to back around one matmul load
of several seconds, so they measure (almost) the same interval.
"""

from __future__ import annotations

import importlib.util
import time

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

from llem.energy.devices import init_nvml, visible_gpus  # noqa: E402
from llem.energy.nvml import NvmlSampler, counter_supported  # noqa: E402
from llem.user_config import MeasurementSettings  # noqa: E402

LOAD_S = 8.0


def busy(seconds: float) -> None:
    """Keep GPU 0 busy with matmuls for about ``seconds``."""
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
    end = time.time() + seconds
    while time.time() < end:
        for _ in range(20):
            a = (a @ a).clamp_(-1, 1)
        torch.cuda.synchronize()


def open_both() -> tuple[NvmlSampler, NvmlSampler]:
    nvml = init_nvml()
    gpus = visible_gpus(nvml)[:1]
    if not counter_supported(nvml, gpus[0]):
        pytest.skip("this GPU has no energy counter (pre-Volta)")
    return NvmlSampler(nvml, gpus, use_counter=True), NvmlSampler(nvml, gpus, use_counter=False)


def test_nvml_counter_agrees_with_power_integration():
    busy(2.0)  # ramp up first
    counter, polled = open_both()
    polled.begin_window()
    counter.begin_window()
    busy(LOAD_S)
    torch.cuda.synchronize()
    by_counter = counter.end_window()
    by_power = polled.end_window()
    e_counter, e_power = by_counter.energy_j, by_power.energy_j
    print(f"counter {e_counter:.1f} J, power integration {e_power:.1f} J over {by_counter.window_s:.2f} s")
    assert e_counter > 50 * LOAD_S  # a loaded GPU draws well over 50 W
    # NVML's power reading is averaged over up to 1 s on many GPUs: allow 5 %.
    assert abs(e_counter - e_power) <= 0.05 * e_counter


@pytest.mark.skipif(importlib.util.find_spec("zeus") is None, reason="the zeus extra is not installed")
def test_nvml_counter_agrees_with_zeus():
    from llem.energy.zeus import ZeusSampler

    busy(2.0)
    counter, _ = open_both()
    zeus = ZeusSampler.open(MeasurementSettings())
    zeus.begin_window()
    counter.begin_window()
    busy(LOAD_S)
    torch.cuda.synchronize()
    ours = counter.end_window()
    theirs = zeus.end_window()
    print(f"llem counter {ours.energy_j:.1f} J, zeus {theirs.devices[0].energy_j:.1f} J")
    assert theirs.method == "zeus-counter"
    assert abs(ours.energy_j - theirs.devices[0].energy_j) <= 0.01 * ours.energy_j
