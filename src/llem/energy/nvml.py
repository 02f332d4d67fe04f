"""llem's own NVML energy reader.

Preferred: the total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ since driver
load; Volta and newer), checked on every GPU when the sampler opens. Otherwise: power polling
(``nvmlDeviceGetPowerUsage``, mW) at ``POLL_HZ`` in a background thread, integrated with the
trapezoid rule, with synchronous samples at both ends of the window; a trace that changes faster
than the polling resolves (bursty load) gets an aliasing warning. A counter that goes
backwards (wrap or driver reset) or does not tick drops that GPU's reading with a warning.
"""

from __future__ import annotations

import threading
import time
from types import ModuleType

from llem.energy.base import DeviceEnergy, EnergyReading, EnergySampler, IdlePower, SamplerUnavailable
from llem.energy.devices import Gpu, device_warnings, init_nvml, visible_gpus
from llem.energy.polling import trace_stats, trapezoid_j, unresolved_trace_warning
from llem.user_config import MeasurementSettings

POLL_HZ = 10.0
# Below this many power samples per window, integration is too coarse to trust closely.
MIN_POWER_SAMPLES = 10


def counter_supported(nvml: ModuleType, gpu: Gpu) -> bool:
    """Whether the GPU's total-energy counter answers (a MIG parent's counter is read as a whole GPU)."""
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
    except nvml.NVMLError as err:
        if getattr(err, "value", None) in (nvml.NVML_ERROR_NOT_SUPPORTED, nvml.NVML_ERROR_FUNCTION_NOT_FOUND):
            return False
        raise SamplerUnavailable(f"NVML: reading {gpu.label}'s energy counter failed ({err})") from err
    return True


def counter_deltas_j(gpus: list[Gpu], start_mj: list[int], end_mj: list[int]) -> tuple[list[DeviceEnergy], list[str]]:
    """Per-GPU energy from two counter readings; a backwards or frozen counter drops that GPU."""
    devices, warnings = [], []
    for gpu, start, end in zip(gpus, start_mj, end_mj):
        delta_mj = end - start
        energy_j: float | None = delta_mj / 1000.0
        if delta_mj < 0:
            warnings.append(
                f"{gpu.label}: the energy counter went backwards ({start} -> {end} mJ: wrap or driver reset); "
                "its energy is dropped"
            )
            energy_j = None
        elif delta_mj == 0:
            warnings.append(f"{gpu.label}: the energy counter did not tick during the window; its energy is dropped")
            energy_j = None
        devices.append(DeviceEnergy(gpu.label, "gpu", energy_j, gpu.uuid, gpu.name))
    return devices, warnings


class PowerPoller:
    """Samples every GPU's power (W) at ``hz`` in a daemon thread between ``start`` and ``stop``."""

    def __init__(self, nvml: ModuleType, gpus: list[Gpu], hz: float = POLL_HZ) -> None:
        self.nvml, self.gpus, self.period_s = nvml, gpus, 1.0 / hz
        self.times_s: list[float] = []
        self.powers_w: list[list[float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: Exception | None = None

    def sample(self) -> None:
        """Take one sample of every GPU now."""
        powers = [self.nvml.nvmlDeviceGetPowerUsage(g.handle) / 1000.0 for g in self.gpus]
        self.times_s.append(time.time())
        self.powers_w.append(powers)

    def _run(self) -> None:
        next_at = time.monotonic() + self.period_s
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            try:
                self.sample()
            except Exception as err:  # recorded and reported when the window closes
                self.error = err
                return
            next_at += self.period_s

    def start(self) -> None:
        self.times_s, self.powers_w, self._stop = [], [], threading.Event()
        self.sample()
        self._thread = threading.Thread(target=self._run, name="llem-nvml-power", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


class NvmlSampler(EnergySampler):
    """GPU energy through NVML: the counter where every GPU has one, else power integration."""

    name = "nvml"

    def __init__(self, nvml: ModuleType, gpus: list[Gpu], use_counter: bool) -> None:
        self.nvml, self.gpus, self.use_counter = nvml, gpus, use_counter
        self.method = "nvml-counter" if use_counter else "nvml-power-integration"
        self.poller = PowerPoller(nvml, gpus)
        self._notes = device_warnings(gpus)
        if not use_counter:
            lacking = [g.label for g in gpus if not counter_supported(nvml, g)]
            self._notes.append(f"no energy counter on {', '.join(lacking)}: power polled at {POLL_HZ:g} Hz")
        self._start_s = 0.0
        self._start_mj: list[int] = []

    @classmethod
    def open(cls, settings: MeasurementSettings) -> NvmlSampler:
        nvml = init_nvml()
        gpus = visible_gpus(nvml)
        return cls(nvml, gpus, all(counter_supported(nvml, g) for g in gpus))

    def identities(self) -> list[str]:
        return [g.uuid for g in self.gpus]

    def notes(self) -> list[str]:
        return list(self._notes)

    def _counters_mj(self) -> list[int]:
        return [int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(g.handle)) for g in self.gpus]

    def begin_window(self) -> None:
        if self.use_counter:
            self._start_mj = self._counters_mj()
            self._start_s = time.time()
        else:
            self.poller.start()
            self._start_s = self.poller.times_s[0]

    def end_window(self) -> EnergyReading:
        if self.use_counter:
            end_mj = self._counters_mj()
            end_s = time.time()
            devices, warnings = counter_deltas_j(self.gpus, self._start_mj, end_mj)
            return EnergyReading(self.method, True, self._start_s, end_s, devices, None, warnings)
        return self._integrate()

    def _integrate(self) -> EnergyReading:
        poller = self.poller
        poller.stop()
        times = poller.times_s
        warnings = []
        if poller.error is not None:
            warnings.append(f"power polling stopped early ({poller.error}); the gap is interpolated")
        devices = []
        for i, gpu in enumerate(self.gpus):
            powers_w = [row[i] for row in poller.powers_w]
            devices.append(DeviceEnergy(gpu.label, "gpu", trapezoid_j(times, powers_w), gpu.uuid, gpu.name))
            if aliased := unresolved_trace_warning(gpu.label, times, powers_w, POLL_HZ):
                warnings.append(aliased)
        window_s = times[-1] - times[0]
        if len(times) < MIN_POWER_SAMPLES or len(times) < 0.8 * POLL_HZ * window_s:
            warnings.append(
                f"only {len(times)} power samples over {window_s:.2f} s (target {POLL_HZ:g} Hz): "
                "the integrated energy is coarse"
            )
        return EnergyReading(self.method, True, times[0], times[-1], devices, len(times), warnings)

    def idle_power(self, duration_s: float) -> IdlePower:
        """Counter GPUs: consecutive short windows. Otherwise: the polled power of all GPUs together,
        weighted by time (trapezoid rule over the samples' own times), over the span actually polled."""
        if self.use_counter:
            return super().idle_power(duration_s)
        self.poller.start()
        time.sleep(duration_s)
        self.poller.stop()
        times, totals_w = self.poller.times_s, [sum(row) for row in self.poller.powers_w]
        stats = trace_stats(times, totals_w)
        label = "idle baseline of " + ", ".join(g.label for g in self.gpus)
        warnings = [w for w in [unresolved_trace_warning(label, times, totals_w, POLL_HZ)] if w]
        if self.poller.error is not None:
            warnings.append(f"{label}: power polling stopped early ({self.poller.error}); the gap is interpolated")
        return IdlePower(stats.mean_w, stats.std_w, stats.samples, stats.span_s, warnings)

    def close(self) -> None:
        self.nvml.nvmlShutdown()
