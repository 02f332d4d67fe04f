"""Before measuring: other processes on the job's GPUs, whose work would land in its energy figure."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import psutil

from llem.config.schema import DeviceIsolation
from llem.errors import LlemError


class GpuInUseError(LlemError):
    """The job's GPUs are in use by other processes and ``runner.device_isolation=error``."""


@dataclass
class IsolationCheck:
    """What the check found: foreign processes per GPU, or why it could not look."""

    mode: str
    checked: bool
    foreign: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None  # why it was not checked

    def warnings(self) -> list[str]:
        return [
            f"{p['gpu']} is also used by pid {p['pid']} ({p['name']}, {_memory(p['used_memory_mb'])}): "
            "its work would be counted in this run's GPU energy"
            for p in self.foreign
        ]

    def record(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "checked": self.checked,
            "foreign": self.foreign,
            "reason": self.reason,
            "warnings": self.warnings(),
        }


def _memory(used_mb: float | None) -> str:
    return "memory unknown" if used_mb is None else f"{used_mb:.0f} MiB"


def _process_name(pid: int) -> str:
    try:
        return psutil.Process(pid).name()
    except psutil.Error:
        return "not visible from here"


def check_devices(
    mode: DeviceIsolation, own_pids: set[int] | None = None, gpu_limit: int | None = None
) -> IsolationCheck:
    """Look for processes other than ``own_pids`` (default: this one) on the GPUs the job will use:
    the first ``gpu_limit`` visible ones (None: all; see :func:`llem.engines.gpu_count`).

    ``error`` mode raises :class:`GpuInUseError` when there are any; no NVML means not checked.
    """
    if mode is DeviceIsolation.off:
        return IsolationCheck(mode.value, False, reason="runner.device_isolation is off")
    from llem.energy.base import SamplerUnavailable
    from llem.energy.devices import init_nvml, visible_gpus

    own = own_pids if own_pids is not None else {os.getpid()}
    try:
        nvml = init_nvml()
    except SamplerUnavailable as err:
        return IsolationCheck(mode.value, False, reason=err.reason)
    try:
        gpus = visible_gpus(nvml)[:gpu_limit]
        foreign = []
        for gpu in gpus:
            for getter in (nvml.nvmlDeviceGetComputeRunningProcesses, nvml.nvmlDeviceGetGraphicsRunningProcesses):
                try:
                    processes = getter(gpu.handle)
                except nvml.NVMLError:
                    continue
                for proc in processes:
                    if proc.pid in own:
                        continue
                    used = proc.usedGpuMemory / 2**20 if proc.usedGpuMemory is not None else None
                    foreign.append(
                        {"gpu": gpu.label, "pid": proc.pid, "name": _process_name(proc.pid), "used_memory_mb": used}
                    )
    except SamplerUnavailable as err:
        return IsolationCheck(mode.value, False, reason=err.reason)
    finally:
        nvml.nvmlShutdown()
    check = IsolationCheck(mode.value, True, foreign)
    if foreign and mode is DeviceIsolation.error:
        raise GpuInUseError(
            "runner.device_isolation=error: "
            + "; ".join(check.warnings())
            + ". Wait for them, choose other GPUs (CUDA_VISIBLE_DEVICES), or set runner.device_isolation=warn"
        )
    return check
