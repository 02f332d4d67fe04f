"""One measurement: the protocol of DESIGN §4, from a config and an output folder, nothing else.

environment snapshot -> energy sampler -> idle baseline -> built-in model preparation (first use) ->
model load -> prompts -> warm-up -> thermal floor -> host load and telemetry start -> [energy window =
timed inference window] -> host load and telemetry stop -> FLOPs -> result.json (and
timeseries.parquet). Only the inference call runs inside the window.
"""

from __future__ import annotations

import dataclasses
import logging
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from llem import environment
from llem.config.engines import ENGINES
from llem.config.load import config_hash, to_dict
from llem.config.schema import ExperimentConfig
from llem.datasets import Prompt, load_prompts
from llem.energy.base import EnergyReading
from llem.energy.baseline import obtain_baseline
from llem.energy.block import energy_block, unmeasured_block
from llem.energy.devices import keep_first_gpus, restore_visible_gpus
from llem.energy.select import Selection, select_sampler
from llem.engines import create_engine, gpu_count
from llem.engines.base import EngineRun, InferenceEngine
from llem.models import prepare_if_needed
from llem.progress import Progress
from llem.results.codec import RESULT_FILE, build, write_result
from llem.results.record import summarize_run
from llem.results.schema import (
    Baseline,
    Energy,
    EngineBuild,
    EngineInfo,
    Flops,
    Memory,
    ModelInfo,
    Phases,
    RunResult,
    ThermalFloor,
    Timestamps,
    Tokens,
    Warmup,
)
from llem.telemetry.host import HostLoadProbe
from llem.telemetry.session import Telemetry
from llem.user_config import MeasurementSettings, load_user_config

log = logging.getLogger("llem.measure")

# Below this, a GPU thermal floor is too short to reach a steady temperature.
MIN_THERMAL_FLOOR_S = 30.0


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def measure(cfg: ExperimentConfig, output_dir: Path, prior_warnings: list[str] | None = None) -> RunResult:
    """Run the measurement of ``cfg``, write ``output_dir/result.json`` and return the result.

    ``prior_warnings`` (e.g. other processes found on the GPUs before the job started) are recorded
    with the measurement's own warnings. An engine that uses a set number of GPUs (vLLM's tensor x
    pipeline parallel size) sees, and is measured on, only the first that many visible ones.
    """
    count = gpu_count(cfg)
    previous = keep_first_gpus(count) if count is not None else None
    try:
        return _measure(cfg, output_dir, prior_warnings)
    finally:
        if count is not None:
            restore_visible_gpus(previous)


def _measure(cfg: ExperimentConfig, output_dir: Path, prior_warnings: list[str] | None) -> RunResult:
    import transformers

    output_dir.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = list(prior_warnings or [])
    phases = Phases()
    started_at = utc_now()
    with _phase(phases, "environment"):
        env = environment.snapshot()
    on_gpu = bool(env.gpus)
    settings = load_user_config().measurement

    engine = create_engine(cfg)
    selection = select_sampler(cfg.energy_sampler, settings)
    log.info(selection.summary())
    sampler = selection.sampler
    try:
        with _phase(phases, "baseline"):
            baseline = idle_baseline(cfg, selection)
        phases.prepare = prepare_if_needed(cfg.model)  # never inside the timed load
        with _phase(phases, "load"):
            load = engine.load()
        rss_after_load_mb = psutil.Process().memory_info().rss / 2**20
        log.info("loaded %s on %s in %.1f s", load.model_path, load.device, load.load_time_s)
        with _phase(phases, "prompts"):
            prompts = load_prompts(cfg.dataset, random_seed=cfg.random_seed, tokenizer=engine.tokenizer())
        transformers.set_seed(cfg.random_seed)
        with _phase(phases, "warmup"):
            warmup = run_warmup(cfg, engine, prompts)
        with _phase(phases, "thermal_floor"):
            floor = thermal_floor(cfg, on_gpu, warnings)

        transformers.set_seed(cfg.random_seed)
        log.info("measuring %d prompts", len(prompts))
        host = HostLoadProbe()
        telemetry = Telemetry.start()
        engine.synchronize()
        inference_start = utc_now()
        progress = Progress("measuring", len(prompts))
        # The energy window and the timed window are one interval: nothing else runs inside (progress
        # is noted where the engine already stops per batch or step; see llem.progress).
        if sampler is not None:
            sampler.begin_window()
        t0 = time.perf_counter()
        run = engine.generate(prompts, progress)
        engine.synchronize()
        inference_time_s = time.perf_counter() - t0
        reading = sampler.end_window() if sampler is not None else None
        inference_end = utc_now()
        phases.inference = inference_time_s
        window_end_s = time.time()
        progress.finish()  # a log write: after the window's end is taken
        host_load, host_warnings = host.finish()
        window_start_s = reading.start_unix_s if reading else window_end_s - inference_time_s
        telemetry_record, telemetry_warnings = telemetry.finish(
            window_start_s, reading.end_unix_s if reading else window_end_s, output_dir, cfg.gpu_telemetry
        )

        with _phase(phases, "flops"):
            flops = build(Flops, engine.flops(run), "flops")
        memory = build(
            Memory,
            {
                "rss_after_load_mb": rss_after_load_mb,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "peak_rss_scope": "process lifetime (getrusage ru_maxrss)",
                **engine.memory(),
            },
            "memory",
        )
        effective = engine.effective_config()
        engine_build = effective.pop("engine_build", None)  # a record of its own, not a setting
    finally:
        engine.close()
        if sampler is not None:
            sampler.close()

    figures = summarize_run(run, inference_time_s)
    energy = _energy(selection, reading, baseline, figures.tokens, settings, load.device)
    new_warnings = energy.warnings + telemetry_warnings + host_warnings
    warnings += new_warnings
    for line in new_warnings:
        log.warning("measurement warning: %s", line)
    result = RunResult(
        llem_version=env.llem_version,
        config_hash=config_hash(cfg),
        config=to_dict(cfg),
        engine=EngineInfo(
            name=engine.name,
            version=next((env.packages[d] for d in ENGINES[engine.name].distributions if d in env.packages), None),
            effective_config=effective,
            build=build(EngineBuild, engine_build, "engine.build") if engine_build else None,
        ),
        model=ModelInfo(
            name=cfg.model,
            path=load.model_path,
            device=load.device,
            n_parameters=load.n_parameters,
            load_time_s=load.load_time_s,
            prepare_time_s=phases.prepare,
        ),
        timestamps=Timestamps(
            started_at=started_at,
            inference_start=inference_start,
            inference_end=inference_end,
            finished_at=utc_now(),
        ),
        tokens=figures.tokens,
        inference_time_s=inference_time_s,
        throughput=figures.throughput,
        latency=figures.latency,
        memory=memory,
        flops=flops,
        energy=energy,
        telemetry=telemetry_record,
        warmup=warmup,
        thermal_floor=floor,
        phases_s=phases,
        host_load=host_load,
        environment=env,
        warnings=warnings,
    )
    write_result(output_dir / RESULT_FILE, result)
    return result


def idle_baseline(cfg: ExperimentConfig, selection: Selection) -> Baseline:
    """The idle baseline record (measured before the model loads), or why there is none."""
    sampler = selection.sampler
    if sampler is None:
        return Baseline(measured=False, reason="no energy sampler: a baseline would not be used")
    if not cfg.baseline.enabled:
        return Baseline(measured=False, reason="baseline.enabled is false")
    if not sampler.supports_baseline:
        return Baseline(measured=False, reason=f"{sampler.method} has no idle power reading")
    log.info("idle baseline (%s, up to %g s)", cfg.baseline.strategy.value, cfg.baseline.duration_seconds)
    baseline = build(Baseline, obtain_baseline(cfg.baseline, sampler), "energy.baseline")
    log.info("idle baseline: %.1f W (%s)", baseline.power_w, baseline.source)
    return baseline


def _energy(
    selection: Selection,
    reading: EnergyReading | None,
    baseline: Baseline,
    tokens: Tokens,
    settings: MeasurementSettings,
    model_device: str,
) -> Energy:
    """The result's energy block, with a note when GPUs were measured but the model ran elsewhere."""
    if reading is None:
        return unmeasured_block(selection, selection.summary().removeprefix("energy: "), baseline)
    sampler = selection.sampler
    assert sampler is not None
    notes = sampler.notes()
    gpu_measured = any(d.scope == "gpu" for d in reading.devices)
    if gpu_measured and not model_device.startswith("cuda"):
        notes.append(f"the model ran on {model_device}, but the energy measured is the GPUs' (idle or another load)")
    return energy_block(selection, reading, baseline, tokens, settings, notes)


class _phase:
    """Context manager setting ``phases.<name>`` to the wall time of a block (seconds)."""

    def __init__(self, phases: Phases, name: str) -> None:
        self.phases, self.name = phases, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        setattr(self.phases, self.name, time.perf_counter() - self.start)


def _cycle(prompts: list[Prompt], n: int) -> list[Prompt]:
    return [prompts[i % len(prompts)] for i in range(n)]


def full_length(cfg: ExperimentConfig, prompts: list[Prompt]) -> list[Prompt]:
    """The prompts set to generate exactly ``max_output_tokens`` (EOS cannot cut a warm-up short)."""
    if cfg.max_output_tokens is None:
        return prompts
    return [
        p if p.max_new_tokens is not None else dataclasses.replace(p, max_new_tokens=cfg.max_output_tokens)
        for p in prompts
    ]


def run_warmup(cfg: ExperimentConfig, engine: InferenceEngine, prompts: list[Prompt]) -> Warmup:
    """Warm the engine on real prompts in full batches of the configured size, at full output length.

    Fixed mode: ``n_warmup`` prompts, rounded up to whole batches. CV mode: see :func:`converge`.
    """
    w = cfg.warmup
    if not w.enabled:
        return Warmup(enabled=False)
    batch = getattr(engine, "batch_size", 1)
    warm = full_length(cfg, prompts)
    if not w.convergence_detection:
        n = -(-w.n_warmup // batch) * batch if w.n_warmup else 0
        if n:
            log.info("warm-up: %d prompt%s", n, "" if n == 1 else "s")
            progress = Progress("warm-up", n)
            engine.generate(_cycle(warm, n), progress)
            progress.finish()
        return Warmup(
            enabled=True,
            mode="fixed",
            n_warmup=w.n_warmup,
            prompts=n,
            batches=n // batch,
            batch_size=batch,
            output_tokens_per_prompt=cfg.max_output_tokens,
        )
    log.info("warm-up: until the latency CV is below %g, at most %d prompts", w.cv_threshold, w.max_prompts)
    progress = Progress("warm-up", w.max_prompts, at_most=True)
    record = converge(lambda chunk: engine.generate(chunk), warm, batch, cfg, progress)
    progress.finish()
    return record


def converge(
    generate: Callable[[list[Prompt]], EngineRun],
    prompts: list[Prompt],
    batch: int,
    cfg: ExperimentConfig,
    progress: Progress | None = None,
) -> Warmup:
    """CV mode: warm up one batch at a time until the latency CV of the last window is low enough.

    Stops when CV < ``cv_threshold`` after ``min_prompts``, or at ``max_prompts``. ``progress`` is
    told the prompts done and the CV after each batch.
    """
    w = cfg.warmup
    latencies: list[float] = []
    used = 0
    cv = None
    while used < w.max_prompts:
        size = min(batch, w.max_prompts - used)
        chunk = [prompts[(used + i) % len(prompts)] for i in range(size)]
        start = time.perf_counter()
        generate(chunk)
        latencies.append(time.perf_counter() - start)
        used += size
        if len(latencies) >= w.window_size:
            window = latencies[-w.window_size :]
            cv = statistics.stdev(window) / statistics.mean(window)
        if progress is not None:
            progress.update(used, note=f"latency CV {cv:.3f}" if cv is not None else "")
        if cv is not None and used >= w.min_prompts and cv < w.cv_threshold:
            return _cv_summary(used, len(latencies), cv, True)
    return _cv_summary(used, len(latencies), cv, False)


def _cv_summary(prompts: int, iterations: int, cv: float | None, converged: bool) -> Warmup:
    return Warmup(
        enabled=True, mode="convergence", prompts=prompts, iterations=iterations, final_cv=cv, converged=converged
    )


def thermal_floor(cfg: ExperimentConfig, on_gpu: bool, warnings: list[str]) -> ThermalFloor:
    """Wait ``warmup.thermal_floor_seconds`` on a GPU so its temperature settles; skipped on CPU."""
    wait = cfg.warmup.thermal_floor_seconds
    if not on_gpu:
        return ThermalFloor(waited_s=0.0, configured_s=wait, skipped="no GPU: the floor settles GPU temperature")
    if wait < MIN_THERMAL_FLOOR_S:
        warnings.append(
            f"thermal floor {wait:g} s is below {MIN_THERMAL_FLOOR_S:g} s: GPU temperature may still be rising"
        )
    time.sleep(wait)
    return ThermalFloor(waited_s=wait, configured_s=wait, skipped=None)
