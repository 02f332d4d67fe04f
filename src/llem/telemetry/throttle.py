"""The throttling and temperature summary of a telemetry run, and its measurement warnings."""

from __future__ import annotations

from llem.results.schema import GpuThrottling, Throttling
from llem.telemetry.sampler import Sample

# NVML clock-event reason bits (nvmlClocksEventReason*), grouped as the result reports them.
SW_POWER_CAP = 0x04
HW_SLOWDOWN = 0x08
SW_THERMAL = 0x20
HW_THERMAL = 0x40
HW_POWER_BRAKE = 0x80
GROUPS = {
    "thermal": SW_THERMAL | HW_THERMAL,
    "power": SW_POWER_CAP | HW_POWER_BRAKE,
    "hw_slowdown": HW_SLOWDOWN,
}
# A temperature rise larger than this inside the window means the GPU was not thermally settled.
MAX_DRIFT_C = 10.0


def _durations_s(samples: list[Sample], mask: int) -> float:
    """Seconds during which ``mask`` was set: each sample stands for the time to the next one."""
    total = 0.0
    for here, after in zip(samples, samples[1:]):
        if here.throttle_reasons is not None and here.throttle_reasons & mask:
            total += after.timestamp_s - here.timestamp_s
    return total


def summarize(samples: list[Sample], start_s: float, end_s: float) -> tuple[Throttling, list[str]]:
    """Per-GPU throttle durations and temperatures inside ``[start_s, end_s]``, and warnings."""
    inside = [s for s in samples if start_s <= s.timestamp_s <= end_s]
    per_gpu: dict[str, GpuThrottling] = {}
    warnings: list[str] = []
    for index in sorted({s.gpu_index for s in inside}):
        mine = [s for s in inside if s.gpu_index == index]
        temps = [s.temperature_c for s in mine if s.temperature_c is not None]
        durations = {f"{name}_s": _durations_s(mine, mask) for name, mask in GROUPS.items()}
        drift = temps[-1] - temps[0] if temps else None
        label = f"gpu{index}"
        per_gpu[label] = GpuThrottling(
            thermal_s=durations["thermal_s"],
            power_s=durations["power_s"],
            hw_slowdown_s=durations["hw_slowdown_s"],
            throttled=any(v > 0 for v in durations.values()),
            max_temperature_c=max(temps) if temps else None,
            start_temperature_c=temps[0] if temps else None,
            end_temperature_c=temps[-1] if temps else None,
            temperature_drift_c=drift,
            samples=len(mine),
        )
        for name, value in durations.items():
            if value > 0:
                warnings.append(f"{label} throttled ({name[:-2].replace('_', ' ')}) for {value:.1f} s in the window")
        if drift is not None and abs(drift) > MAX_DRIFT_C:
            warnings.append(
                f"{label} temperature drifted {drift:+.0f} °C in the window (> {MAX_DRIFT_C:g} °C): not thermally "
                "settled; lengthen warmup.thermal_floor_seconds"
            )
    gpus = per_gpu.values()
    summary = Throttling(
        throttled=any(g.throttled for g in gpus),
        thermal_s=sum(g.thermal_s for g in gpus),
        power_s=sum(g.power_s for g in gpus),
        hw_slowdown_s=sum(g.hw_slowdown_s for g in gpus),
        max_temperature_c=max((g.max_temperature_c for g in gpus if g.max_temperature_c is not None), default=None),
        per_gpu=per_gpu,
    )
    return summary, warnings
