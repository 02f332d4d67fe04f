"""The simulated GPUs behind the fake ``pynvml``: power, energy and sensors as known functions of time.

A scenario (JSON, path in ``$LLEM_FAKE_NVML``) lists devices. Each device draws ``idle_w`` before
``load_after_s`` and after ``load_until_s`` (seconds from the scenario's ``epoch_unix_s``) and
``loaded_w`` between, plus a sine ripple of amplitude ``idle_ripple_w`` / ``ripple_w`` and period
``ripple_period_s``. With ``load_period_s`` set, the load is a square wave instead: ``loaded_w`` for
the first ``load_duty`` of each period (counted from ``load_after_s``), ``between_w`` for the rest
(bursts of compute with gaps between them). Its power reading refreshes every ``power_update_s``
(0: continuously). Its
energy counter is the exact integral of that power in mJ from the epoch, plus
``counter_offset_mj``, updated every ``counter_update_s`` (0: continuously) and wrapping modulo
``counter_wrap_mj`` when set. Tests integrate the same functions over a recorded window to get the
known total. The SM clock idles at ``sm_clock_idle_mhz`` outside the load, boosts to
``sm_clock_boost_mhz`` under it (gaps between bursts included) and drops to ``sm_clock_capped_mhz``
during a power, thermal or slowdown clock event of ``throttle``; the memory clock stays at
``memory_clock_mhz``. Nothing here knows about llem.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

SCENARIO_ENV = "LLEM_FAKE_NVML"
INF = float("inf")

# NVIDIA architecture codes (nvmlDeviceArchitecture_t)
# clock-event reasons that pull the SM clock down: SW power cap, HW slowdown, SW/HW thermal, power brake
SLOWING_REASONS = 0x4 | 0x8 | 0x20 | 0x40 | 0x80

ARCH = {"kepler": 2, "maxwell": 3, "pascal": 4, "volta": 5, "turing": 6, "ampere": 7, "ada": 8, "hopper": 9}


@dataclass
class FakeDevice:
    """One simulated GPU (realistic defaults: an H100 SXM)."""

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-5a1e7c3d-0000-4000-8000-000000000000"
    architecture: str = "hopper"
    counter: bool = True  # total-energy counter supported (Volta and newer)
    counter_offset_mj: int = 48_213_507_000  # energy since driver load at the epoch
    counter_wrap_mj: int | None = None
    counter_update_s: float = 0.0
    power_update_s: float = 0.0  # the power reading refreshes this often (0: continuously)
    idle_w: float = 70.0
    loaded_w: float = 450.0
    idle_ripple_w: float = 1.5
    ripple_w: float = 60.0
    ripple_period_s: float = 1.7
    load_after_s: float = 0.0
    load_until_s: float = INF
    load_period_s: float = 0.0  # square-wave load: period of the bursts (0: steady load)
    load_duty: float = 0.5  # share of each period spent at loaded_w
    between_w: float = 150.0  # power between bursts (clocks still up, little work)
    temperature_idle_c: float = 34.0
    temperature_loaded_c: float = 61.0
    temperature_tau_s: float = 40.0
    memory_total_mb: float = 81559.0
    memory_idle_mb: float = 530.0
    memory_loaded_mb: float = 14210.0
    sm_loaded_pct: float = 97.0
    throttle: list[list[float]] = field(default_factory=list)  # [start_s, end_s, reason mask]
    sm_clock_idle_mhz: float = 345.0
    sm_clock_boost_mhz: float = 1980.0
    sm_clock_capped_mhz: float = 1755.0  # under a power, thermal or slowdown clock event
    memory_clock_mhz: float = 2619.0  # HBM3 runs at one clock, idle or loaded
    persistence: bool = True
    power_limit_w: float = 700.0
    mig: list[str] = field(default_factory=list)  # MIG instance UUIDs carved from this GPU
    # pynvml functions that answer NVML_ERROR_NOT_SUPPORTED on this GPU (e.g. nvmlDeviceGetUtilizationRates)
    unsupported: list[str] = field(default_factory=list)
    # compute processes holding a context on this GPU: [{"pid": ..., "used_memory_mb": ...}]
    processes: list[dict[str, float]] = field(default_factory=list)

    def loaded(self, tau: float) -> bool:
        return self.load_after_s <= tau < self.load_until_s

    def reported_power_w(self, tau: float) -> float:
        """What ``nvmlDeviceGetPowerUsage`` shows: the power at the last refresh."""
        if self.power_update_s:
            tau = math.floor(tau / self.power_update_s) * self.power_update_s
        return self.power_w(tau)

    def power_w(self, tau: float) -> float:
        base, amp = (self.loaded_w, self.ripple_w) if self.loaded(tau) else (self.idle_w, self.idle_ripple_w)
        if self.loaded(tau) and self.load_period_s and not self.in_burst(tau):
            base = self.between_w
        return base + amp * math.sin(2 * math.pi * tau / self.ripple_period_s)

    def in_burst(self, tau: float) -> bool:
        """Whether a square-wave load is in its high phase at ``tau`` (always, for a steady load)."""
        if not self.load_period_s:
            return True
        return (tau - self.load_after_s) % self.load_period_s < self.load_duty * self.load_period_s

    def burst_s(self, a: float, b: float) -> float:
        """Seconds of high phase between ``a`` and ``b`` (both inside the loaded interval)."""
        period, high = self.load_period_s, self.load_duty * self.load_period_s

        def since_start(tau: float) -> float:
            x = tau - self.load_after_s
            return math.floor(x / period) * high + min(x % period, high)

        return since_start(b) - since_start(a)

    def energy_j(self, tau: float) -> float:
        """Exact integral of ``power_w`` from the epoch (0) to ``tau`` seconds."""
        total = 0.0
        bounds = [0.0, self.load_after_s, self.load_until_s, INF]
        for i, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
            a, b = max(lo, 0.0), min(hi, tau)
            if b <= a:
                continue
            level, amp = (self.loaded_w, self.ripple_w) if i == 1 else (self.idle_w, self.idle_ripple_w)
            w = 2 * math.pi / self.ripple_period_s
            total += amp / w * (math.cos(w * a) - math.cos(w * b))
            if i == 1 and self.load_period_s:
                high_s = self.burst_s(a, b)
                total += self.loaded_w * high_s + self.between_w * (b - a - high_s)
            else:
                total += level * (b - a)
        return total

    def counter_mj(self, tau: float) -> int:
        if self.counter_update_s:
            tau = math.floor(tau / self.counter_update_s) * self.counter_update_s
        value = self.counter_offset_mj + int(self.energy_j(tau) * 1000.0)
        return value % self.counter_wrap_mj if self.counter_wrap_mj else value

    def temperature_c(self, tau: float) -> float:
        if not self.loaded(tau):
            return self.temperature_idle_c
        rise = 1.0 - math.exp(-(tau - self.load_after_s) / self.temperature_tau_s)
        return self.temperature_idle_c + (self.temperature_loaded_c - self.temperature_idle_c) * rise

    def sm_clock_mhz(self, tau: float) -> float:
        """The current SM clock: idle, boosted under load, lower while a clock event slows it."""
        if not self.loaded(tau):
            return self.sm_clock_idle_mhz
        return self.sm_clock_capped_mhz if self.throttle_mask(tau) & SLOWING_REASONS else self.sm_clock_boost_mhz

    def throttle_mask(self, tau: float) -> int:
        mask = 0 if self.loaded(tau) else 0x1  # GpuIdle
        for start, end, bits in self.throttle:
            if start <= tau < end:
                mask |= int(bits)
        return mask


@dataclass
class Scenario:
    epoch_unix_s: float
    devices: list[FakeDevice]
    init_error: str | None = None  # library_not_found | driver_not_loaded
    driver: str = "550.54.15"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        return cls(
            epoch_unix_s=float(data["epoch_unix_s"]),
            devices=[FakeDevice(**d) for d in data.get("devices", [])],
            init_error=data.get("init_error"),
            driver=data.get("driver", "550.54.15"),
        )

    def tau(self, unix_s: float) -> float:
        return unix_s - self.epoch_unix_s

    def energy_between_j(self, index: int, start_unix_s: float, end_unix_s: float) -> float:
        """The known energy of device ``index`` over a wall-clock window."""
        dev = self.devices[index]
        return dev.energy_j(self.tau(end_unix_s)) - dev.energy_j(self.tau(start_unix_s))


def write_scenario(path: os.PathLike[str] | str, **data: Any) -> Scenario:
    """Write a scenario file (devices as dicts of FakeDevice fields) and return it."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    return Scenario.from_dict(data)


def load_scenario() -> Scenario:
    path = os.environ.get(SCENARIO_ENV)
    if not path:
        raise RuntimeError(f"the fake pynvml needs ${SCENARIO_ENV} to name a scenario file")
    with open(path, encoding="utf-8") as fh:
        return Scenario.from_dict(json.load(fh))
