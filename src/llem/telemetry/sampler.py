"""A daemon thread sampling every measured GPU through NVML at ``HZ``.

Each sample: wall time (s), power (W), temperature (°C), memory used/total (MB), SM utilisation (%),
the current SM and memory clocks (MHz) and the clock-event (throttle) reason bitmask. A query a GPU
does not support reads as None.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from llem.energy.devices import Gpu

HZ = 10.0
MB = 2**20


@dataclass
class Sample:
    """One GPU at one instant."""

    timestamp_s: float  # unix time
    gpu_index: int  # the engine's index
    power_w: float | None
    temperature_c: float | None
    memory_used_mb: float | None
    memory_total_mb: float | None
    sm_utilisation_pct: float | None
    throttle_reasons: int | None  # NVML clock-event reason bitmask
    sm_clock_mhz: float | None = None  # current SM clock
    memory_clock_mhz: float | None = None  # current memory clock


def _reasons_query(nvml: ModuleType) -> Callable[[Any], int]:
    # Renamed from "throttle" to "clocks event" reasons in newer drivers and bindings.
    return (
        getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    )


class TelemetrySampler:
    """Samples ``gpus`` between ``start`` and ``stop``; ``samples`` holds the readings in time order."""

    def __init__(self, nvml: ModuleType, gpus: list[Gpu], hz: float = HZ) -> None:
        self.nvml, self.gpus, self.period_s = nvml, gpus, 1.0 / hz
        self.samples: list[Sample] = []
        self.unsupported: set[str] = set()  # "<query>@<gpu label>"
        self.cpu_time_s = 0.0  # CPU time the sampling thread used
        self._reasons = _reasons_query(nvml)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _query(self, what: str, gpu: Gpu, fn: Callable[[], Any]) -> Any:
        key = f"{what}@{gpu.label}"
        if key in self.unsupported:
            return None
        try:
            return fn()
        except self.nvml.NVMLError:
            self.unsupported.add(key)  # asked once; a GPU that lacks it will not grow it
            return None

    def sample(self) -> None:
        """Read every GPU once."""
        nvml = self.nvml
        clock = nvml.nvmlDeviceGetClockInfo  # current clock in MHz
        for gpu in self.gpus:
            h = gpu.handle
            now = time.time()
            power = self._query("power", gpu, lambda h=h: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0)
            temp = self._query(
                "temperature", gpu, lambda h=h: float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU))
            )
            mem = self._query("memory", gpu, lambda h=h: nvml.nvmlDeviceGetMemoryInfo(h))
            util = self._query("utilisation", gpu, lambda h=h: float(nvml.nvmlDeviceGetUtilizationRates(h).gpu))
            reasons = self._query("throttle_reasons", gpu, lambda h=h: int(self._reasons(h)))
            sm_clock = self._query("sm_clock", gpu, lambda h=h: float(clock(h, nvml.NVML_CLOCK_SM)))
            memory_clock = self._query("memory_clock", gpu, lambda h=h: float(clock(h, nvml.NVML_CLOCK_MEM)))
            self.samples.append(
                Sample(
                    now,
                    gpu.cuda_index,
                    power,
                    temp,
                    mem.used / MB if mem is not None else None,
                    mem.total / MB if mem is not None else None,
                    util,
                    reasons,
                    sm_clock,
                    memory_clock,
                )
            )

    def _run(self) -> None:
        started = time.thread_time()
        next_at = time.monotonic()
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.sample()
            next_at += self.period_s
        self.cpu_time_s = time.thread_time() - started

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="llem-telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def persistence_off(self) -> list[str]:
        """Labels of GPUs whose persistence mode is off (the driver may reinitialise between runs)."""
        off = []
        for gpu in self.gpus:
            mode = self._query("persistence", gpu, lambda g=gpu: self.nvml.nvmlDeviceGetPersistenceMode(g.handle))
            if mode is not None and mode != self.nvml.NVML_FEATURE_ENABLED:
                off.append(gpu.label)
        return off
