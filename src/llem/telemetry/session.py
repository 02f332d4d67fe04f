"""Telemetry around the inference window: start before it opens, finish after it closes."""

from __future__ import annotations

from pathlib import Path

from llem.energy.base import SamplerUnavailable
from llem.energy.devices import init_nvml, visible_gpus
from llem.results.schema import Telemetry as TelemetryBlock
from llem.results.schema import TelemetryGpu, Timeseries
from llem.telemetry.sampler import HZ, TelemetrySampler
from llem.telemetry.throttle import summarize
from llem.telemetry.timeseries import COLUMNS, write_timeseries

TIMESERIES_FILE = "timeseries.parquet"


class Telemetry:
    """A running telemetry sampler, or the reason there is none (no NVML, no GPU)."""

    def __init__(self, sampler: TelemetrySampler | None, reason: str | None) -> None:
        self.sampler, self.reason = sampler, reason

    @classmethod
    def start(cls) -> Telemetry:
        try:
            nvml = init_nvml()
        except SamplerUnavailable as err:
            return cls(None, err.reason)
        try:
            gpus = visible_gpus(nvml)
        except SamplerUnavailable as err:
            nvml.nvmlShutdown()
            return cls(None, err.reason)
        sampler = TelemetrySampler(nvml, gpus)
        sampler.start()
        return cls(sampler, None)

    def finish(self, start_s: float, end_s: float, output_dir: Path, write: bool) -> tuple[TelemetryBlock, list[str]]:
        """Stop sampling; the ``telemetry`` record for the window and its warnings. Writes the timeseries."""
        if self.sampler is None:
            return TelemetryBlock(available=False, reason=self.reason), []
        sampler = self.sampler
        sampler.stop()
        summary, warnings = summarize(sampler.samples, start_s, end_s)
        off = sampler.persistence_off()
        if off:
            warnings.append(
                f"persistence mode off on {', '.join(off)}: the driver may reinitialise between runs; "
                "enable it with `nvidia-smi -pm 1`"
            )
        timeseries = None
        if write and sampler.samples:
            rows = write_timeseries(sampler.samples, output_dir / TIMESERIES_FILE)
            timeseries = Timeseries(file=TIMESERIES_FILE, rows=rows, hz=1.0, columns=list(COLUMNS))
        span_s = sampler.samples[-1].timestamp_s - sampler.samples[0].timestamp_s if sampler.samples else 0.0
        record = TelemetryBlock(
            available=True,
            hz=HZ,
            gpus=[TelemetryGpu(index=g.cuda_index, name=g.name, uuid=g.uuid) for g in sampler.gpus],
            samples=len(sampler.samples),
            span_s=span_s,
            sampler_cpu_s=sampler.cpu_time_s,
            unsupported_queries=sorted(sampler.unsupported),
            throttling=summary,
            timeseries=timeseries,
        )
        sampler.nvml.nvmlShutdown()
        return record, warnings
