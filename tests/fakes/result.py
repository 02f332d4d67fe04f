"""A complete, plausible :class:`RunResult` for tests that need a result file without measuring."""

from __future__ import annotations

from pathlib import Path

from llem.energy.block import unmeasured_block
from llem.energy.select import Selection
from llem.results.codec import RESULT_FILE, write_result
from llem.results.schema import (
    Baseline,
    Distribution,
    EngineInfo,
    Environment,
    Flops,
    HostLoad,
    Latency,
    Memory,
    ModelInfo,
    Phases,
    RunResult,
    Telemetry,
    ThermalFloor,
    Throughput,
    Timestamps,
    Tokens,
    Warmup,
)


def example_result(output_tokens: int = 32, inference_time_s: float = 2.0) -> RunResult:
    """A result of ``output_tokens`` generated in ``inference_time_s`` seconds, energy not measured."""
    stamp = "2026-01-01T00:00:00Z"
    latency = Distribution(mean_s=0.1, p50_s=0.1, p90_s=0.1, p99_s=0.1, count=4)
    return RunResult(
        llem_version="0",
        config_hash="0123456789abcdef",
        config={"model": "llem-tiny"},
        engine=EngineInfo(name="transformers", version="5", effective_config={}),
        model=ModelInfo(name="llem-tiny", path="/m", device="cpu", n_parameters=1, load_time_s=1.0),
        timestamps=Timestamps(started_at=stamp, inference_start=stamp, inference_end=stamp, finished_at=stamp),
        tokens=Tokens(
            input_tokens=64,
            output_tokens=output_tokens,
            total_tokens=64 + output_tokens,
            requests=4,
            requests_stopped_by_eos=0,
            batches=1,
            counting="generated tokens",
        ),
        inference_time_s=inference_time_s,
        throughput=Throughput(
            output_tokens_per_s=output_tokens / inference_time_s,
            total_tokens_per_s=(64 + output_tokens) / inference_time_s,
            requests_per_s=4 / inference_time_s,
            window="timed window",
        ),
        latency=Latency(ttft=latency, itl=latency, queue=latency, batch_wall=latency, method="from arrival"),
        memory=Memory(rss_after_load_mb=100.0, peak_rss_mb=120.0, peak_rss_scope="process"),
        flops=Flops(total=1e9, per_output_token=1e9 / output_tokens, method="analytical", confidence="high"),
        energy=unmeasured_block(Selection(None, None), "energy_sampler=null", Baseline(measured=False, reason="x")),
        telemetry=Telemetry(available=False, reason="NVML: library not found"),
        warmup=Warmup(enabled=False),
        thermal_floor=ThermalFloor(waited_s=0.0, configured_s=0.0, skipped="no GPU"),
        phases_s=Phases(inference=inference_time_s),
        host_load=HostLoad(
            usable_cpus=2,
            load_avg_1m_start=0.5,
            load_avg_1m_end=0.5,
            runnable_start=1,
            runnable_end=1,
            window_s=inference_time_s,
            busy_cpu_s=2.0,
            own_cpu_s=2.0,
            other_cpu_s=0.0,
            other_cpu_share=0.0,
            steal_s=0.0,
            busy=False,
        ),
        environment=Environment(
            llem_version="0",
            python="3.11",
            platform="linux",
            hostname="host",
            cpu_model="cpu",
            cpu_count_logical=2,
            cpu_affinity=2,
            memory_total_mb=1024.0,
            torch_threads=2,
            cuda_available=False,
            cuda_version=None,
            cuda_visible_devices=None,
            gpus=[],
            packages={},
        ),
        warnings=[],
    )


def write_example_result(job_dir: Path, **figures: float) -> RunResult:
    """Write :func:`example_result` as ``job_dir/result.json``; returns it."""
    result = example_result(**figures)  # type: ignore[arg-type]
    write_result(job_dir / RESULT_FILE, result)
    return result
