"""Simulated GPUs for the fake NVML, with realistic power levels (watts) and identities."""

from __future__ import annotations

H100 = {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-11111111-aaaa-4000-8000-000000000001"}
A100 = {
    "name": "NVIDIA A100-SXM4-40GB",
    "uuid": "GPU-22222222-bbbb-4000-8000-000000000002",
    "architecture": "ampere",
    "idle_w": 55.0,
    "loaded_w": 310.0,
    "ripple_w": 35.0,
    "ripple_period_s": 0.9,
}
# A Pascal GPU: no total-energy counter.
P100 = {
    "name": "Tesla P100-PCIE-16GB",
    "uuid": "GPU-33333333-cccc-4000-8000-000000000003",
    "architecture": "pascal",
    "counter": False,
    "idle_w": 31.0,
    "loaded_w": 205.0,
    "ripple_w": 25.0,
}
# The P100 running bursts of work: 205 W for 0.15 s, 60 W for 0.15 s (a 0.3 s square wave), no ripple.
P100_BURSTS = {**P100, "load_period_s": 0.3, "load_duty": 0.5, "between_w": 60.0, "ripple_w": 0.0}
