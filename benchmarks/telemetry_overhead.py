"""Benchmark: CPU cost of the 10 Hz telemetry sampler, as a share of one core (goal < 1 %).

Runs :class:`llem.telemetry.sampler.TelemetrySampler` for ``--seconds`` and divides the CPU time
its thread used by the wall time. On a machine with NVIDIA GPUs it reads them through the real
NVML; elsewhere (or with ``--fake N``) through the simulated GPUs of ``tests/fakes/nvml``, whose
Python arithmetic stands in for the driver calls.

    python benchmarks/telemetry_overhead.py [--seconds 20] [--fake 8]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

FAKES = Path(__file__).resolve().parent.parent / "tests" / "fakes" / "nvml"


def use_fake_gpus(count: int) -> None:
    sys.path.insert(0, str(FAKES))
    import fake_gpu

    path = Path(tempfile.mkdtemp()) / "scenario.json"
    devices = [{"uuid": f"GPU-{i:08d}-0000-4000-8000-000000000000"} for i in range(count)]
    fake_gpu.write_scenario(path, epoch_unix_s=time.time(), devices=devices)
    os.environ["LLEM_FAKE_NVML"] = str(path)
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--fake", type=int, default=0, help="simulate this many GPUs instead of real NVML")
    args = parser.parse_args()

    from llem.energy.base import SamplerUnavailable
    from llem.energy.devices import init_nvml, visible_gpus

    if args.fake:
        use_fake_gpus(args.fake)
    try:
        nvml = init_nvml()
    except SamplerUnavailable as err:
        print(f"{err.reason}: using 8 simulated GPUs", file=sys.stderr)
        use_fake_gpus(8)
        sys.modules.pop("pynvml", None)
        nvml = init_nvml()
    from llem.telemetry.sampler import TelemetrySampler

    gpus = visible_gpus(nvml)
    sampler = TelemetrySampler(nvml, gpus)
    start = time.time()
    sampler.start()
    time.sleep(args.seconds)
    sampler.stop()
    wall_s = time.time() - start
    report = {
        "nvml": "simulated" if os.environ.get("LLEM_FAKE_NVML") else "real",
        "gpus": len(gpus),
        "wall_s": round(wall_s, 2),
        "samples_per_gpu_per_s": round(len(sampler.samples) / len(gpus) / wall_s, 2),
        "thread_cpu_s": round(sampler.cpu_time_s, 4),
        "share_of_one_core_pct": round(100 * sampler.cpu_time_s / wall_s, 3),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
