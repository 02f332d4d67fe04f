"""A fake ``pynvml`` (nvidia-ml-py) replaying the simulated GPUs of ``fake_gpu``.

Same names, constants, units (mW, mJ, bytes, °C) and error class as the real bindings, for the
subset llem, Zeus and codecarbon call. Put this folder first on ``PYTHONPATH`` (subprocesses) or in
``sys.modules["pynvml"]`` (in-process) to use it. Every reading is computed from wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fake_gpu import ARCH, Scenario, load_scenario

# -- constants (values of the real bindings) ---------------------------------------------------
NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_ERROR_INSUFFICIENT_POWER = 8
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_IRQ_ISSUE = 11
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_CORRUPTED_INFOROM = 14
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_OPERATING_SYSTEM = 17
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_IN_USE = 19
NVML_ERROR_MEMORY = 20
NVML_ERROR_NO_DATA = 21
NVML_ERROR_UNKNOWN = 999

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_CLOCK_VIDEO = 0, 1, 2, 3
NVML_FEATURE_DISABLED = 0
NVML_FEATURE_ENABLED = 1
NVML_DEVICE_ARCH_KEPLER, NVML_DEVICE_ARCH_MAXWELL, NVML_DEVICE_ARCH_PASCAL = 2, 3, 4
NVML_DEVICE_ARCH_VOLTA, NVML_DEVICE_ARCH_TURING, NVML_DEVICE_ARCH_AMPERE = 5, 6, 7
NVML_DEVICE_ARCH_ADA, NVML_DEVICE_ARCH_HOPPER = 8, 9
NVML_FI_DEV_POWER_AVERAGE = 185
NVML_FI_DEV_POWER_INSTANT = 186
NVML_POWER_SCOPE_GPU = 0
NVML_POWER_SCOPE_MODULE = 1
NVML_POWER_SCOPE_MEMORY = 2

nvmlClocksEventReasonGpuIdle = 0x1
nvmlClocksEventReasonApplicationsClocksSetting = 0x2
nvmlClocksEventReasonSwPowerCap = 0x4
nvmlClocksEventReasonHwSlowdown = 0x8
nvmlClocksEventReasonSyncBoost = 0x10
nvmlClocksEventReasonSwThermalSlowdown = 0x20
nvmlClocksEventReasonHwThermalSlowdown = 0x40
nvmlClocksEventReasonHwPowerBrakeSlowdown = 0x80
nvmlClocksThrottleReasonGpuIdle = nvmlClocksEventReasonGpuIdle
nvmlClocksThrottleReasonSwPowerCap = nvmlClocksEventReasonSwPowerCap
nvmlClocksThrottleReasonHwSlowdown = nvmlClocksEventReasonHwSlowdown
nvmlClocksThrottleReasonSwThermalSlowdown = nvmlClocksEventReasonSwThermalSlowdown
nvmlClocksThrottleReasonHwThermalSlowdown = nvmlClocksEventReasonHwThermalSlowdown
nvmlClocksThrottleReasonHwPowerBrakeSlowdown = nvmlClocksEventReasonHwPowerBrakeSlowdown

_STRINGS = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
}


class NVMLError(Exception):
    """As in nvidia-ml-py: ``NVMLError(code)`` builds the code's subclass; ``.value`` is the code."""

    _valClassMapping: dict[int, type] = {}

    def __new__(cls, value: int):  # noqa: D102
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _STRINGS.get(self.value, f"Unknown Error ({self.value})")


for _code, _name in (
    (NVML_ERROR_NOT_SUPPORTED, "NotSupported"),
    (NVML_ERROR_LIBRARY_NOT_FOUND, "LibraryNotFound"),
    (NVML_ERROR_DRIVER_NOT_LOADED, "DriverNotLoaded"),
    (NVML_ERROR_UNINITIALIZED, "Uninitialized"),
    (NVML_ERROR_NOT_FOUND, "NotFound"),
):
    _cls = type(f"NVMLError_{_name}", (NVMLError,), {})
    NVMLError._valClassMapping[_code] = _cls
    globals()[_cls.__name__] = _cls


def _nvmlGetFunctionPointer(name: str) -> None:  # Zeus checks that the official bindings are installed
    raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)


# -- state ---------------------------------------------------------------------------------------
_scenario: Scenario | None = None
_init_count = 0


@dataclass(frozen=True)
class _Handle:
    index: int
    mig_uuid: str | None = None


@dataclass
class c_nvmlMemory_t:
    total: int
    free: int
    used: int


@dataclass
class c_nvmlUtilization_t:
    gpu: int
    memory: int


def _need() -> Scenario:
    if _init_count <= 0 or _scenario is None:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    return _scenario


def _device(handle: _Handle) -> Any:
    scenario = _need()
    if not isinstance(handle, _Handle) or handle.index >= len(scenario.devices):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return scenario.devices[handle.index]


def _tau() -> float:
    return _need().tau(time.time())


# -- the API -------------------------------------------------------------------------------------
def nvmlInit() -> None:
    global _scenario, _init_count
    scenario = load_scenario()
    if scenario.init_error == "library_not_found":
        raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND)
    if scenario.init_error == "driver_not_loaded":
        raise NVMLError(NVML_ERROR_DRIVER_NOT_LOADED)
    _scenario = scenario
    _init_count += 1


nvmlInitWithFlags = lambda flags: nvmlInit()  # noqa: E731


def nvmlShutdown() -> None:
    global _init_count
    if _init_count <= 0:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    _init_count -= 1


def nvmlSystemGetDriverVersion() -> str:
    return _need().driver


def nvmlDeviceGetCount() -> int:
    return len(_need().devices)


def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
    if not 0 <= index < nvmlDeviceGetCount():
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return _Handle(index)


def nvmlDeviceGetHandleByUUID(uuid: str | bytes) -> _Handle:
    text = uuid.decode() if isinstance(uuid, bytes) else uuid
    for i, dev in enumerate(_need().devices):
        if dev.uuid == text:
            return _Handle(i)
        if text in dev.mig:
            return _Handle(i, text)
    raise NVMLError(NVML_ERROR_NOT_FOUND)


def nvmlDeviceIsMigDeviceHandle(handle: _Handle) -> int:
    return int(handle.mig_uuid is not None)


def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle: _Handle) -> _Handle:
    if handle.mig_uuid is None:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return _Handle(handle.index)


def nvmlDeviceGetUUID(handle: _Handle) -> str:
    return handle.mig_uuid or _device(handle).uuid


def nvmlDeviceGetName(handle: _Handle) -> str:
    return _device(handle).name


def nvmlDeviceGetArchitecture(handle: _Handle) -> int:
    return ARCH[_device(handle).architecture]


def nvmlDeviceGetC2cModeInfoV(handle: _Handle) -> Any:
    _device(handle)
    raise NVMLError(NVML_ERROR_NOT_SUPPORTED)  # not a Grace Hopper module


def _whole_gpu(handle: _Handle) -> Any:
    dev = _device(handle)
    if handle.mig_uuid is not None:  # MIG instances report no power or energy
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return dev


def nvmlDeviceGetTotalEnergyConsumption(handle: _Handle) -> int:
    """mJ since driver load."""
    dev = _whole_gpu(handle)
    if not dev.counter:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return dev.counter_mj(_tau())


def nvmlDeviceGetPowerUsage(handle: _Handle) -> int:
    """mW."""
    return int(round(_whole_gpu(handle).reported_power_w(_tau()) * 1000.0))


def nvmlDeviceGetEnforcedPowerLimit(handle: _Handle) -> int:
    return int(_device(handle).power_limit_w * 1000)


nvmlDeviceGetPowerManagementLimit = nvmlDeviceGetEnforcedPowerLimit


@dataclass
class _FieldValue:
    class _Value:
        def __init__(self, ui: int) -> None:
            self.uiVal = ui

    nvmlReturn: int
    value: Any


def nvmlDeviceGetFieldValues(handle: _Handle, fields: list[Any]) -> list[_FieldValue]:
    out = []
    for item in fields:
        field_id = item[0] if isinstance(item, tuple) else item
        if field_id in (NVML_FI_DEV_POWER_INSTANT, NVML_FI_DEV_POWER_AVERAGE):
            out.append(_FieldValue(NVML_SUCCESS, _FieldValue._Value(nvmlDeviceGetPowerUsage(handle))))
        else:
            out.append(_FieldValue(NVML_ERROR_NOT_SUPPORTED, _FieldValue._Value(0)))
    return out


def nvmlDeviceGetTemperature(handle: _Handle, sensor: int) -> int:
    return int(round(_device(handle).temperature_c(_tau())))


def nvmlDeviceGetTemperatureV(handle: _Handle, sensor: int) -> int:
    return nvmlDeviceGetTemperature(handle, sensor)


def nvmlDeviceGetMemoryInfo(handle: _Handle) -> c_nvmlMemory_t:
    dev = _device(handle)
    used_mb = dev.memory_loaded_mb if dev.loaded(_tau()) else dev.memory_idle_mb
    total, used = int(dev.memory_total_mb * 2**20), int(used_mb * 2**20)
    return c_nvmlMemory_t(total=total, free=total - used, used=used)


def nvmlDeviceGetUtilizationRates(handle: _Handle) -> c_nvmlUtilization_t:
    dev = _device(handle)
    if "nvmlDeviceGetUtilizationRates" in dev.unsupported:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    busy = dev.loaded(_tau())
    return c_nvmlUtilization_t(gpu=int(dev.sm_loaded_pct) if busy else 0, memory=40 if busy else 0)


def nvmlDeviceGetClockInfo(handle: _Handle, clock_type: int) -> int:
    """Current clock in MHz (graphics and SM share one clock on these GPUs)."""
    dev = _device(handle)
    if "nvmlDeviceGetClockInfo" in dev.unsupported:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    if clock_type in (NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM):
        return int(round(dev.sm_clock_mhz(_tau())))
    if clock_type == NVML_CLOCK_MEM:
        return int(round(dev.memory_clock_mhz))
    raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)


def nvmlDeviceGetCurrentClocksEventReasons(handle: _Handle) -> int:
    return _device(handle).throttle_mask(_tau())


nvmlDeviceGetCurrentClocksThrottleReasons = nvmlDeviceGetCurrentClocksEventReasons


def nvmlDeviceGetPersistenceMode(handle: _Handle) -> int:
    return NVML_FEATURE_ENABLED if _device(handle).persistence else NVML_FEATURE_DISABLED


@dataclass
class c_nvmlProcessInfo_t:
    pid: int
    usedGpuMemory: int | None  # bytes
    gpuInstanceId: int = 0xFFFFFFFF
    computeInstanceId: int = 0xFFFFFFFF


def nvmlDeviceGetComputeRunningProcesses(handle: _Handle) -> list[Any]:
    return [
        c_nvmlProcessInfo_t(int(p["pid"]), int(p["used_memory_mb"] * 2**20) if "used_memory_mb" in p else None)
        for p in _device(handle).processes
    ]


def nvmlDeviceGetGraphicsRunningProcesses(handle: _Handle) -> list[Any]:
    _device(handle)
    return []
