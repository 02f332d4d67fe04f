"""The GPUs the engine uses, as NVML devices: ``CUDA_VISIBLE_DEVICES`` mapped to NVML handles.

``CUDA_VISIBLE_DEVICES`` may hold indices (``0,2``), GPU UUIDs (``GPU-8a1f...``, prefixes allowed
as CUDA does) or MIG instances (``MIG-...``). Unset means every GPU. The engine's GPU *i* is the
*i*-th entry. A MIG instance has no energy counter or power reading of its own: its parent GPU is
measured (shared with the other instances) and a warning says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from llem.energy.base import SamplerUnavailable

NVML_FIX = "install the NVIDIA driver"


@dataclass
class Gpu:
    """One GPU as the engine sees it."""

    cuda_index: int  # the engine's device index (cuda:<i>)
    nvml_index: int  # NVML's index of the physical GPU measured
    uuid: str  # GPU-... of the physical GPU; MIG-... kept in ``mig_uuid``
    name: str
    handle: Any  # NVML handle of the physical GPU (energy, power, telemetry)
    mig_uuid: str | None = None

    @property
    def label(self) -> str:
        return f"gpu{self.cuda_index}"


def init_nvml() -> ModuleType:
    """Import and initialise NVML; :class:`SamplerUnavailable` with a short reason when it cannot."""
    try:
        import pynvml
    except ImportError as err:
        raise SamplerUnavailable("NVML: nvidia-ml-py is not installed", "pip install nvidia-ml-py") from err
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        code = getattr(err, "value", None)
        if code == pynvml.NVML_ERROR_LIBRARY_NOT_FOUND:
            reason = "NVML: library not found"
        elif code == pynvml.NVML_ERROR_DRIVER_NOT_LOADED:
            reason = "NVML: NVIDIA driver not loaded"
        elif code == pynvml.NVML_ERROR_NO_PERMISSION:
            reason = "NVML: no permission to open the GPU devices"
        else:
            reason = f"NVML: initialisation failed ({err})"
        raise SamplerUnavailable(reason, NVML_FIX) from err
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _physical(nvml: ModuleType) -> list[tuple[int, str, Any]]:
    """``(index, uuid, handle)`` of every physical GPU."""
    found = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        found.append((index, _text(nvml.nvmlDeviceGetUUID(handle)), handle))
    return found


def _resolve(nvml: ModuleType, entry: str, physical: list[tuple[int, str, Any]]) -> tuple[int, Any, str | None]:
    """``(nvml index, physical handle, MIG uuid or None)`` for one ``CUDA_VISIBLE_DEVICES`` entry."""
    if entry.isdigit():
        index = int(entry)
        if index >= len(physical):
            raise SamplerUnavailable(f"NVML: CUDA_VISIBLE_DEVICES names GPU {index}, but only {len(physical)} exist")
        return index, physical[index][2], None
    if entry.startswith("MIG-"):
        try:
            mig = nvml.nvmlDeviceGetHandleByUUID(entry)
            parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)
        except nvml.NVMLError as err:
            raise SamplerUnavailable(f"NVML: MIG instance {entry} not found ({err})") from err
        parent_uuid = _text(nvml.nvmlDeviceGetUUID(parent))
        index = next(i for i, uuid, _ in physical if uuid == parent_uuid)
        return index, parent, entry
    matches = [(i, handle) for i, uuid, handle in physical if uuid.startswith(entry)]
    if len(matches) != 1:
        found = "no GPU" if not matches else "several GPUs"
        raise SamplerUnavailable(f"NVML: CUDA_VISIBLE_DEVICES entry {entry!r} matches {found}")
    return matches[0][0], matches[0][1], None


def visible_gpus(nvml: ModuleType, environ: dict[str, str] | None = None) -> list[Gpu]:
    """The GPUs the engine can use, in its own index order; :class:`SamplerUnavailable` if none."""
    env = os.environ if environ is None else environ
    physical = _physical(nvml)
    raw = env.get("CUDA_VISIBLE_DEVICES")
    entries = [e.strip() for e in raw.split(",")] if raw is not None else [str(i) for i, _, _ in physical]
    # CUDA stops at the first invalid entry; "-1" or an empty value hides every GPU.
    visible: list[str] = []
    for entry in entries:
        if not entry or entry.startswith("-"):
            break
        visible.append(entry)
    if not visible:
        shown = "no NVIDIA GPU" if raw is None else f"CUDA_VISIBLE_DEVICES={raw!r} hides every GPU"
        raise SamplerUnavailable(f"NVML: {shown}")
    gpus = []
    for cuda_index, entry in enumerate(visible):
        index, handle, mig = _resolve(nvml, entry, physical)
        name = _text(nvml.nvmlDeviceGetName(handle))
        gpus.append(Gpu(cuda_index, index, physical[index][1], name, handle, mig))
    return gpus


def keep_first_gpus(count: int, environ: dict[str, str] | None = None) -> str | None:
    """Narrow ``CUDA_VISIBLE_DEVICES`` to its first ``count`` entries (the first ``count`` GPUs when unset),
    so that the engine, the energy samplers and telemetry all see exactly the GPUs the engine uses.

    Returns the previous value (None: it was unset), for :func:`restore_visible_gpus`.
    """
    env = os.environ if environ is None else environ
    previous = env.get("CUDA_VISIBLE_DEVICES")
    entries = [e.strip() for e in previous.split(",")] if previous is not None else [str(i) for i in range(count)]
    env["CUDA_VISIBLE_DEVICES"] = ",".join(entries[:count])
    return previous


def restore_visible_gpus(previous: str | None, environ: dict[str, str] | None = None) -> None:
    """Undo :func:`keep_first_gpus` (an inline run must not narrow the next job's GPUs)."""
    env = os.environ if environ is None else environ
    if previous is None:
        env.pop("CUDA_VISIBLE_DEVICES", None)
    else:
        env["CUDA_VISIBLE_DEVICES"] = previous


def device_warnings(gpus: list[Gpu], environ: dict[str, str] | None = None) -> list[str]:
    """What limits the per-GPU attribution: shared MIG parents, an index order CUDA may not share."""
    env = os.environ if environ is None else environ
    warnings = [
        f"{g.label} is MIG instance {g.mig_uuid}: the whole GPU {g.uuid} is measured, other instances included"
        for g in gpus
        if g.mig_uuid
    ]
    raw = env.get("CUDA_VISIBLE_DEVICES", "")
    by_index = raw == "" or raw.split(",")[0].strip().isdigit()
    if len(gpus) > 1 and by_index and env.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        warnings.append(
            "CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA's GPU order may differ from NVML's, so per-GPU "
            "energy may be attributed to the wrong index (the sum is unaffected)"
        )
    return warnings
