"""Energy through Zeus's ``ZeusMonitor`` (optional extra ``llem[zeus]``, PyPI package ``zeus``).

Zeus reads the GPU energy counter on Volta and newer, polls power in a helper process on older
GPUs, and adds CPU package and DRAM energy through RAPL when its tree is readable. llem keeps
synchronisation to itself (the engine synchronises before the window opens and closes). The power
Zeus polled is read back and checked for a load that changes faster than the polling resolves.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from llem.energy.base import DeviceEnergy, EnergyReading, EnergySampler, SamplerUnavailable
from llem.energy.devices import Gpu, device_warnings, init_nvml, visible_gpus
from llem.energy.polling import unresolved_trace_warning
from llem.user_config import MeasurementSettings

WINDOW = "llem-inference"


class ZeusSampler(EnergySampler):
    """GPU (and, where readable, CPU/DRAM) energy from one ZeusMonitor window."""

    name = "zeus"

    def __init__(self, monitor: Any, gpus: list[Gpu]) -> None:
        self.monitor, self.gpus = monitor, gpus
        old = [g.label for i, g in enumerate(gpus) if not monitor.gpus.supports_get_total_energy_consumption(i)]
        self.method = "zeus-power-polling" if old else "zeus-counter"
        self._notes = device_warnings(gpus)
        if old:
            self._notes.append(
                f"no energy counter on {', '.join(old)}: Zeus polls their power instead, busying a CPU core, "
                "which can slow the measured run (energy_sampler=nvml polls at 10 Hz)"
            )
        self._start_s = 0.0

    @classmethod
    def open(cls, settings: MeasurementSettings) -> ZeusSampler:
        logging.getLogger("zeus").setLevel(logging.WARNING)  # its INFO lines would crowd the console
        try:
            from zeus.monitor import ZeusMonitor
        except ImportError as err:
            raise SamplerUnavailable("Zeus: package not installed", "pip install 'llem[zeus]'") from err
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        if any(e.strip().startswith(("GPU-", "MIG-")) for e in visible.split(",")):
            raise SamplerUnavailable("Zeus: CUDA_VISIBLE_DEVICES holds UUIDs or MIG instances, which Zeus cannot map")
        try:
            nvml = init_nvml()
        except SamplerUnavailable as err:
            raise SamplerUnavailable(f"Zeus: {err.reason}", err.fix) from err
        try:
            gpus = visible_gpus(nvml)
        except SamplerUnavailable as err:
            raise SamplerUnavailable(f"Zeus: {err.reason}", err.fix) from err
        finally:
            nvml.nvmlShutdown()
        try:
            monitor = ZeusMonitor(gpu_indices=list(range(len(gpus))), sync_execution_with="torch")
        except Exception as err:  # zeus's own init errors (ZeusBaseError and friends)
            raise SamplerUnavailable(f"Zeus: ZeusMonitor could not start ({err})") from err
        return cls(monitor, gpus)

    def auto_skip_reason(self) -> str | None:
        """Zeus polls counter-less GPUs with a zero sleep (its update period starts at min(0.0, ...)
        in zeus 0.16), busying a CPU core and slowing the measured run: llem's own 10 Hz polling
        is the better source there. ``energy_sampler=zeus`` still uses it."""
        if self.method == "zeus-power-polling":
            return "Zeus: no GPU energy counter, and Zeus's power polling busy-loops a CPU core"
        return None

    def identities(self) -> list[str]:
        return [g.uuid for g in self.gpus] + [f"zeus-cpu{i}" for i in self.monitor.cpu_indices]

    def notes(self) -> list[str]:
        return list(self._notes)

    def begin_window(self) -> None:
        self.monitor.begin_window(WINDOW, sync_execution=False)
        self._start_s = time.time()

    def end_window(self) -> EnergyReading:
        m = self.monitor.end_window(WINDOW, sync_execution=False)
        end_s = time.time()
        devices, warnings = [], []

        def add(label: str, scope: str, energy_j: float, identity: str, name: str | None) -> None:
            kept: float | None = energy_j
            if energy_j < 0:
                warnings.append(f"{label}: the energy counter went backwards (wrap or reset); its energy is dropped")
                kept = None
            elif energy_j == 0:
                warnings.append(f"{label}: the energy counter did not tick during the window; its energy is dropped")
                kept = None
            devices.append(DeviceEnergy(label, scope, kept, identity, name))

        for i, gpu in enumerate(self.gpus):
            add(gpu.label, "gpu", m.gpu_energy[i], gpu.uuid, gpu.name)
        for i, energy_j in (m.cpu_energy or {}).items():
            add(f"cpu{i}", "cpu", energy_j, f"zeus-cpu{i}", None)
        for i, energy_j in (m.dram_energy or {}).items():
            add(f"dram{i}", "dram", energy_j, f"zeus-dram{i}", None)
        if self.method == "zeus-power-polling":
            warnings += polled_trace_warnings(self.monitor, self.gpus, self._start_s, end_s)
        return EnergyReading(self.method, True, self._start_s, end_s, devices, None, warnings)

    def close(self) -> None:
        if self.monitor.power_monitor is not None:  # the polling processes of counter-less GPUs
            self.monitor.power_monitor.stop()


def polled_trace_warnings(monitor: Any, gpus: list[Gpu], start_s: float, end_s: float) -> list[str]:
    """Aliasing warnings for the GPUs whose power Zeus polled over the window (from its power timeline).

    Zeus keeps a sample only when the reading changed; dropping unchanged samples can only raise the
    mean step the check looks at (more warnings, never fewer). A Zeus without ``get_power_timeline``
    cannot be checked, and the reading says so.
    """
    power = monitor.power_monitor
    try:
        hz = 1.0 / power.gpu_update_period if getattr(power, "gpu_update_period", 0) else None
        warnings = []
        for i, gpu in enumerate(gpus):
            if monitor.gpus.supports_get_total_energy_consumption(i):
                continue
            trace = power.get_power_timeline("device_instant", i, start_s, end_s).get(i, [])
            times, powers = [t for t, _ in trace], [w for _, w in trace]
            if aliased := unresolved_trace_warning(f"{gpu.label} (Zeus)", times, powers, hz):
                warnings.append(aliased)
        return warnings
    except Exception as err:  # an older or newer Zeus API: say so rather than fail the measurement
        return [f"Zeus's polled power could not be read back ({type(err).__name__}: {err}); aliasing not checked"]
