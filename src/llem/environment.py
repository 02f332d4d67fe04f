"""A snapshot of the machine and software a measurement ran on."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import psutil

import llem
from llem.config.engines import ENGINES
from llem.results.codec import build
from llem.results.schema import Environment, GpuFacts

# Packages whose versions change what is measured.
TRACKED_PACKAGES = (
    "torch",
    *(distribution for facts in ENGINES.values() for distribution in facts.distributions),
    "accelerate",
    "tokenizers",
    "bitsandbytes",
    "peft",
    "hydra-core",
    "omegaconf",
    "nvidia-ml-py",
    "zeus",
    "codecarbon",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the tracked packages (absent ones left out)."""
    found = {}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_facts() -> list[GpuFacts]:
    """Name, memory, driver and power limit of each visible CUDA device; empty without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        gpus.append(
            {
                "index": index,
                "name": props.name,
                "memory_total_mb": props.total_memory / 2**20,
                "compute_capability": f"{props.major}.{props.minor}",
            }
        )
    _add_nvml_facts(gpus)
    return [build(GpuFacts, gpu) for gpu in gpus]


def _add_nvml_facts(gpus: list[dict[str, Any]]) -> None:
    """Driver, UUID, power limit and persistence mode from NVML, matched through ``CUDA_VISIBLE_DEVICES``."""
    from llem.energy.base import SamplerUnavailable
    from llem.energy.devices import init_nvml, visible_gpus

    try:
        nvml = init_nvml()
    except SamplerUnavailable:  # NVML missing or unusable: the torch facts stand alone
        return
    try:
        driver = nvml.nvmlSystemGetDriverVersion()
        by_index = {g.cuda_index: g for g in visible_gpus(nvml)}
        for gpu in gpus:
            found = by_index.get(gpu["index"])
            if found is None:
                continue
            gpu.update(driver=driver, uuid=found.uuid, mig_uuid=found.mig_uuid, nvml_index=found.nvml_index)
            gpu["power_limit_w"] = nvml.nvmlDeviceGetEnforcedPowerLimit(found.handle) / 1000.0
            gpu["persistence_mode"] = nvml.nvmlDeviceGetPersistenceMode(found.handle) == nvml.NVML_FEATURE_ENABLED
    except (SamplerUnavailable, nvml.NVMLError):  # partial NVML support on some devices: keep what was read
        pass
    finally:
        nvml.nvmlShutdown()


def snapshot() -> Environment:
    """Everything about where this ran, for the result's ``environment`` block."""
    import torch

    mem = psutil.virtual_memory()
    return Environment(
        llem_version=llem.__version__,
        python=sys.version.split()[0],
        platform=platform.platform(),
        hostname=platform.node(),
        cpu_model=cpu_model(),
        cpu_count_logical=psutil.cpu_count(logical=True),
        cpu_affinity=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        memory_total_mb=mem.total / 2**20,
        torch_threads=torch.get_num_threads(),
        cuda_available=torch.cuda.is_available(),
        cuda_version=torch.version.cuda,
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        gpus=gpu_facts(),
        packages=package_versions(),
    )
