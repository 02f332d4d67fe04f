"""Realistic llem result folders for tests and benchmarks, written by llem's own writers.

- :func:`make_study`: a ``llem run`` study folder ``<root>/<name>/<time>/``: study_plan.json, manifest.json,
  skipped.json and study.yaml from llem's planner and study writer, then per run a job folder with
  experiment.json, status.json, result.json (:func:`llem.results.codec.write_result`) and, in the first
  ``timeseries_runs`` completed runs, timeseries.parquet (:func:`llem.telemetry.timeseries.write_timeseries`).
- :func:`make_sweep`: a ``python -m llem ... -m`` folder ``<root>/multirun/<time>/``: multirun.yaml and job
  folders ``0/``, ``1/`` ... (one per combination of the factors).
- :func:`make_single_run`: a ``python -m llem`` job folder ``<root>/runs/<time>/``.

The figures model a 0.5B model on one H100 (energy measured by NVML's counter), or on a CPU when
``energy=False``. An experiment's true figures are the base ones times the ``effects`` of its factor
levels (a multiplier on energy per output token and on ITL; throughput divided by it) times a
per-experiment offset (lognormal, sigma ``spread``; TTFT's sigma is three times that, so that fronts
have several points). Each cycle adds lognormal noise of sigma ``noise`` to throughput, power, latencies
and memory (energy per output token, their ratio, varies by about 1.4 x ``noise``). With ``effects={}`` and
``spread=0`` every experiment has the same true figures: only noise differs. The default effect:
the last level of the first factor costs :data:`DEFAULT_EFFECT` times the energy per token of the others.
Runs to fail or skip are named ``(experiment number, cycle)``, the number counting the combinations of
``factors`` in order (the first factor slowest), cycle None for every cycle. Warnings come from llem's
own producers: energy windows under 10 s, power-capped GPUs in some runs, a busy host in about 1 run in 10.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import yaml

from llem.config.load import config_dict_hash, load_experiment, to_dict
from llem.energy.base import DeviceEnergy, EnergyReading
from llem.energy.block import energy_block, unmeasured_block
from llem.energy.select import Selection
from llem.results.codec import RESULT_FILE, write_result
from llem.results.headline import headline
from llem.results.io import write_json_atomic
from llem.results.schema import (
    Baseline,
    Distribution,
    EngineInfo,
    Environment,
    Flops,
    GpuFacts,
    Latency,
    Memory,
    ModelInfo,
    Phases,
    RunResult,
    SamplerRecord,
    Telemetry,
    TelemetryGpu,
    ThermalFloor,
    Throughput,
    Timeseries,
    Timestamps,
    Tokens,
    Warmup,
)
from llem.study.execute import Execution
from llem.study.launch import load_spec, write_study_files
from llem.study.manifest import Manifest
from llem.study.plan import plan_study
from llem.telemetry.host import HostSnapshot, host_load
from llem.telemetry.sampler import HZ, Sample
from llem.telemetry.throttle import SW_POWER_CAP, summarize
from llem.telemetry.timeseries import COLUMNS, write_timeseries
from llem.user_config import MeasurementSettings

MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
BASE_CONFIG: dict[str, Any] = {"model": MODEL, "dataset": {"n_prompts": 100}, "max_output_tokens": 256}
DEFAULT_EFFECT = 0.8
START_UNIX_S = 1_772_442_000.0  # 2026-03-02T09:00:00Z
GPU_TPS, CPU_TPS = 1800.0, 90.0  # output tokens per second of the base configuration
GPU_POWER_W, IDLE_POWER_W = 310.0, 68.0
TTFT_P50_S, ITL_P50_S = 0.045, 0.011
OOM = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB, 1.06 GiB free."
RunKeys = Collection[tuple[int, int | None]]


@dataclasses.dataclass
class Experiment:
    """One configuration to fake: its config (JSON form), id, levels and true-figure multipliers."""

    number: int  # place among the combinations of the factors
    config: dict[str, Any]
    experiment_id: str
    overrides: list[str]
    cost: float  # multiplier on energy per output token
    offsets: np.ndarray  # lognormal offsets of throughput, power, TTFT, memory


def _no_fsync(builder: Callable[..., Path]) -> Callable[..., Path]:
    """Build without fsync: a fake tree needs no durability, and syncing is most of the build time."""

    @functools.wraps(builder)
    def build(*args: Any, **kwargs: Any) -> Path:
        with mock.patch("os.fsync"):
            return builder(*args, **kwargs)

    return build


@_no_fsync
def make_study(
    root: Path,
    *,
    factors: Mapping[str, Sequence[Any]],
    cycles: int = 3,
    seed: int = 0,
    failed: RunKeys = (),
    skipped: RunKeys = (),
    energy: bool = True,
    energy_estimated: bool = False,
    effects: Mapping[str, Mapping[Any, float]] | None = None,
    spread: float = 0.1,
    noise: float = 0.03,
    timeseries_runs: int = 2,
    name: str = "fake-study",
    base: Mapping[str, Any] | None = None,
) -> Path:
    """A finished study of ``factors`` (dotted config keys -> levels) x ``cycles``; returns its folder.

    Combinations llem's planner refuses are skipped by it (skipped.json); the study's status is completed.
    """
    folder = root / name / "2026-03-02T09-00-00"
    folder.mkdir(parents=True)
    source = folder.parent / "study.yaml"
    shared = _shared(base, energy, energy_estimated)
    study_execution = {"n_cycles": cycles, "experiment_order": "interleave"}
    source.write_text(
        yaml.safe_dump({"name": name, **shared, "sweep": dict(factors), "study_execution": study_execution})
    )
    plan = plan_study(load_spec(source)[0])
    write_study_files(folder, plan, source, Execution())
    source.unlink()
    numbers = _numbers(factors)
    experiments = {}
    for planned in plan.experiments:
        config = to_dict(planned.config)
        number = numbers[_levels(config, factors)]
        experiments[planned.experiment_id] = _experiment(
            number, config, planned.overrides, factors, effects, spread, seed
        )
    manifest = Manifest(folder / "manifest.json", json.loads((folder / "manifest.json").read_text()))
    clock = START_UNIX_S
    series_left = timeseries_runs
    for entry in manifest.data["runs"]:
        experiment = experiments[entry["experiment_id"]]
        key = (experiment.number, entry["cycle"])
        if _named(key, skipped):
            entry.update(status="skipped", error="circuit breaker: too many consecutive failures")
            continue
        study_run = {
            "study_name": name,
            "design_hash": plan.design_hash,
            "position": entry["position"],
            "cycle": entry["cycle"],
            "experiment_id": experiment.experiment_id,
        }
        job = folder / entry["job_dir"]
        outcome = _write_job(
            job, experiment, study_run, clock, seed, entry["cycle"], energy, energy_estimated, noise,
            fail=_named(key, failed), timeseries=series_left > 0,
        )  # fmt: skip
        series_left -= outcome.result is not None
        entry.update(
            status=outcome.status,
            attempts=1,
            started_at=_stamp(clock),
            finished_at=_stamp(outcome.end_s),
            error=outcome.error,
            result_path=f"{entry['job_dir']}/{RESULT_FILE}" if outcome.result else None,
            headline=headline(outcome.result) if outcome.result else None,
        )
        clock = outcome.end_s + 2.0
    manifest.data["started_at"] = _stamp(START_UNIX_S)
    manifest.set_status("completed")
    return folder


@_no_fsync
def make_sweep(
    root: Path,
    *,
    factors: Mapping[str, Sequence[Any]],
    seed: int = 0,
    failed: Collection[int] = (),
    energy: bool = True,
    effects: Mapping[str, Mapping[Any, float]] | None = None,
    spread: float = 0.1,
    noise: float = 0.03,
    timeseries_runs: int = 1,
    base: Mapping[str, Any] | None = None,
) -> Path:
    """A finished ``-m`` sweep, one job per combination of ``factors``; ``failed``: job numbers that
    failed (their folders hold status.json and experiment.json only). Returns the sweep folder."""
    folder = root / "multirun" / "2026-03-02T09-00-00"
    folder.mkdir(parents=True)
    shared = _shared(base, energy, False)
    fixed = [f"{key}={_hydra(value)}" for key, value in _dotted(shared).items()]
    swept = [f"{key}={','.join(_hydra(v) for v in levels)}" for key, levels in factors.items()]
    multirun = {
        "hydra": {
            "mode": "MULTIRUN",
            "sweep": {"dir": str(folder), "subdir": "${hydra.job.num}"},
            "overrides": {"hydra": ["hydra.mode=MULTIRUN"], "task": fixed + swept},
            "job": {"name": "llem", "config_name": "config"},
        },
        **to_dict(load_experiment(shared)),
    }
    (folder / "multirun.yaml").write_text(yaml.safe_dump(multirun, sort_keys=False))
    clock = START_UNIX_S
    for number, levels in enumerate(itertools.product(*factors.values())):
        chosen = dict(zip(factors, levels))
        config = to_dict(load_experiment(_merge(shared, chosen)))
        overrides = fixed + [f"{key}={_hydra(value)}" for key, value in chosen.items()]
        experiment = _experiment(number, config, overrides, factors, effects, spread, seed)
        outcome = _write_job(
            folder / str(number), experiment, None, clock, seed, 0, energy, False, noise,
            fail=number in failed, timeseries=number < timeseries_runs,
        )  # fmt: skip
        clock = outcome.end_s + 2.0
    return folder


@_no_fsync
def make_single_run(
    root: Path,
    *,
    seed: int = 0,
    energy: bool = True,
    failed: bool = False,
    timeseries: bool = True,
    base: Mapping[str, Any] | None = None,
) -> Path:
    """One finished ``python -m llem`` run (a failed one when ``failed``); returns its job folder."""
    shared = _shared(base, energy, False)
    config = to_dict(load_experiment(shared))
    overrides = [f"{key}={_hydra(value)}" for key, value in _dotted(shared).items()]
    experiment = _experiment(0, config, overrides, {}, {}, 0.0, seed)
    job = root / "runs" / "2026-03-02T09-00-00"
    _write_job(job, experiment, None, START_UNIX_S, seed, 0, energy, False, 0.03, fail=failed, timeseries=timeseries)
    return job


def _shared(base: Mapping[str, Any] | None, energy: bool, estimated: bool) -> dict[str, Any]:
    sampler = ("codecarbon" if estimated else "auto") if energy else None
    return {**BASE_CONFIG, **(base or {}), "energy_sampler": sampler}


def _numbers(factors: Mapping[str, Sequence[Any]]) -> dict[tuple[Any, ...], int]:
    """Each combination of levels -> its number (the first factor slowest)."""
    return {tuple(map(_key, levels)): i for i, levels in enumerate(itertools.product(*factors.values()))}


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _levels(config: Mapping[str, Any], factors: Mapping[str, Sequence[Any]]) -> tuple[str, ...]:
    def get(dotted: str) -> Any:
        value: Any = config
        for part in dotted.split("."):
            value = value[part]
        return value

    return tuple(_key(get(name)) for name in factors)


def _experiment(
    number: int,
    config: dict[str, Any],
    overrides: list[str],
    factors: Mapping[str, Sequence[Any]],
    effects: Mapping[str, Mapping[Any, float]] | None,
    spread: float,
    seed: int,
) -> Experiment:
    if effects is None:
        effects = {name: {levels[-1]: DEFAULT_EFFECT} for name, levels in list(factors.items())[:1]}
    levels = dict(zip(factors, _levels(config, factors)))
    cost = float(np.prod([m for f, table in effects.items() for lv, m in table.items() if levels[f] == _key(lv)]))
    sigmas = np.array([spread, spread / 2, spread * 3, spread])
    offsets = np.random.default_rng([seed, number]).normal(0.0, 1.0, 4) * sigmas
    experiment_id = config_dict_hash(config)[:8]
    return Experiment(number, config, experiment_id, overrides, cost, offsets)


@dataclasses.dataclass
class Outcome:
    status: str
    error: str | None
    result: RunResult | None
    end_s: float


def _write_job(
    job: Path,
    experiment: Experiment,
    study_run: dict[str, Any] | None,
    start_s: float,
    seed: int,
    cycle: int,
    energy: bool,
    estimated: bool,
    noise: float,
    *,
    fail: bool,
    timeseries: bool,
) -> Outcome:
    """Write one job folder: experiment.json, status.json and (when it completed) result.json."""
    job.mkdir(parents=True)
    runner = {"kind": "process", "experiment_timeout_seconds": None, "silence_timeout_seconds": None}
    record = {
        "config_hash": config_dict_hash(experiment.config),
        "config": experiment.config,
        "overrides": experiment.overrides,
        "choices": {"engine": experiment.config["engine"]},
        "study_run": study_run,
        "runner": {**runner, "device_isolation": "warn", "image": None, "source": "default"},
        "device_isolation": {"mode": "warn", "checked": energy, "foreign": [], "reason": None, "warnings": []},
    }
    write_json_atomic(job / "experiment.json", record)
    status = {"status": "running", "started_at": _stamp(start_s), "pid": 4100 + cycle}
    status.update({"study_run": study_run} if study_run else {}, runner="process (from default)")
    if fail:
        end_s = start_s + 21.0
        status.update(
            status="failed",
            worker={"pid": 4200 + cycle, "exit_code": 1, "wall_s": 21.0, "ended": "exit code 1"},
            finished_at=_stamp(end_s),
            error_type="OutOfMemoryError",
            message=OOM,
            exit_reason="error",
            traceback=f"Traceback (most recent call last):\n  ...\ntorch.OutOfMemoryError: {OOM}\n",
        )
        write_json_atomic(job / "status.json", status)
        return Outcome("failed", f"OutOfMemoryError: {OOM}", None, end_s)
    rng = np.random.default_rng([seed, experiment.number, cycle, 1])
    result = _result(experiment, rng, start_s, energy, estimated, noise, job if timeseries else None)
    write_result(job / RESULT_FILE, result)
    end_s = start_s + 20.0 + result.inference_time_s
    worker = {"pid": 4200 + cycle, "exit_code": 0, "wall_s": end_s - start_s, "ended": "exit code 0"}
    status.update(status="completed", worker=worker, finished_at=_stamp(end_s), exit_reason="completed")
    write_json_atomic(job / "status.json", status)
    return Outcome("completed", None, result, end_s)


def _result(
    experiment: Experiment,
    rng: np.random.Generator,
    start_s: float,
    energy: bool,
    estimated: bool,
    noise: float,
    timeseries_dir: Path | None,
) -> RunResult:
    """A result of ``experiment``: its true figures with this cycle's noise."""
    config = experiment.config
    n_prompts = config["dataset"]["n_prompts"]
    output_tokens = int(n_prompts * config["max_output_tokens"] * 0.93)  # some requests stop at EOS
    input_tokens = n_prompts * 48
    tps_off, power_off, ttft_off, memory_off = experiment.offsets
    wobble = np.exp(rng.normal(0.0, noise, 5))
    tps = (GPU_TPS if energy else CPU_TPS) / experiment.cost * np.exp(tps_off) * wobble[0]
    window_s = output_tokens / tps
    inference_start = start_s + 18.0
    ttft = _distribution(TTFT_P50_S * np.exp(ttft_off) * wobble[2] * (1 if energy else 8), n_prompts)
    itl = _distribution(ITL_P50_S * experiment.cost * wobble[3] * (1 if energy else 20), output_tokens)
    busy = rng.random() < 0.1
    host, host_warnings = host_load(
        HostSnapshot(0.0, 0.6, 1, 1000.0, 0.0, 10.0),
        HostSnapshot(window_s, 0.7, 2, 1000.0 + window_s * (1.9 if busy else 1.05), 0.0, 10.0 + window_s),
        8,
    )
    if energy:
        samples = _samples(inference_start, window_s, GPU_POWER_W * np.exp(power_off) * wobble[1], rng)
        throttling, telemetry_warnings = summarize(samples, inference_start, inference_start + window_s)
        block = _energy(samples, inference_start, window_s, output_tokens, input_tokens, estimated)
        telemetry = Telemetry(
            available=True,
            hz=HZ,
            gpus=[TelemetryGpu(index=0, name="NVIDIA H100 80GB HBM3", uuid="GPU-5c1d")],
            samples=len(samples),
            span_s=samples[-1].timestamp_s - samples[0].timestamp_s,
            sampler_cpu_s=0.02 * window_s,
            throttling=throttling,
        )
        if timeseries_dir is not None:
            rows = write_timeseries(samples, timeseries_dir / "timeseries.parquet")
            telemetry.timeseries = Timeseries(file="timeseries.parquet", rows=rows, hz=1.0, columns=list(COLUMNS))
    else:
        telemetry_warnings = []
        telemetry = Telemetry(available=False, reason="NVML: library not found")
        block = unmeasured_block(
            Selection(None, None),
            "not measured (energy_sampler=null: throughput only)",
            Baseline(measured=False, reason="no energy sampler: a baseline would not be used"),
        )
    peak_mb = 1480.0 * np.exp(memory_off) * wobble[4]
    return RunResult(
        llem_version="0.1.0",
        config_hash=config_dict_hash(config),
        config=config,
        engine=EngineInfo(name=config["engine"], version="5.19.0", effective_config={"batch_size": 1}),
        model=ModelInfo(
            name=config["model"],
            path=f"/models/{config['model']}",
            device="cuda:0" if energy else "cpu",
            n_parameters=494_032_768,
            load_time_s=4.2,
        ),
        timestamps=Timestamps(
            started_at=_stamp(start_s),
            inference_start=_stamp(inference_start),
            inference_end=_stamp(inference_start + window_s),
            finished_at=_stamp(inference_start + window_s + 1.0),
        ),
        tokens=Tokens(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
            requests=n_prompts,
            requests_stopped_by_eos=n_prompts // 7,
            batches=n_prompts,
            counting="output = generated tokens up to and including the first EOS; no padding",
        ),
        inference_time_s=window_s,
        throughput=Throughput(
            output_tokens_per_s=output_tokens / window_s,
            total_tokens_per_s=(input_tokens + output_tokens) / window_s,
            requests_per_s=n_prompts / window_s,
            window="timed inference window (all batches, device synchronised at both ends)",
        ),
        latency=Latency(
            ttft=ttft,
            itl=itl,
            queue=_distribution(ttft.p50_s * 0.4, n_prompts),
            batch_wall=_distribution(window_s / n_prompts, n_prompts),
            method="per request, from its arrival (offline serving)",
        ),
        memory=Memory(
            rss_after_load_mb=2210.0,
            peak_rss_mb=2350.0 if energy else peak_mb + 900.0,
            peak_rss_scope="process lifetime (getrusage ru_maxrss)",
            cuda_peak_allocated_mb=peak_mb if energy else None,
            cuda_peak_reserved_mb=peak_mb * 1.12 if energy else None,
        ),
        flops=Flops(
            total=2 * 494_032_768 * (input_tokens + output_tokens),
            per_output_token=2 * 494_032_768 * (input_tokens + output_tokens) / output_tokens,
            method="analytical",
            confidence="high",
        ),
        energy=block,
        telemetry=telemetry,
        warmup=Warmup(enabled=True, mode="fixed", n_warmup=5, prompts=5, batches=5, batch_size=1),
        thermal_floor=ThermalFloor(waited_s=60.0 if energy else 0.0, configured_s=60.0, skipped=None),
        phases_s=Phases(environment=1.1, baseline=0.2, load=4.2, prompts=0.3, warmup=2.0, inference=window_s),
        host_load=host,
        environment=_environment(energy),
        warnings=block.warnings + telemetry_warnings + host_warnings,
    )


def _distribution(p50_s: float, count: int) -> Distribution:
    """A right-skewed latency distribution with median ``p50_s``."""
    return Distribution(mean_s=p50_s * 1.15, p50_s=p50_s, p90_s=p50_s * 1.8, p99_s=p50_s * 2.6, count=count)


def _samples(start_s: float, window_s: float, power_w: float, rng: np.random.Generator) -> list[Sample]:
    """10 Hz telemetry from 1 s before the window to 1 s after; a power cap in about 1 run in 5 (in the
    window's second half). Clocks as on an H100 SXM: SM idle at 345 MHz, boosting near 1980 MHz under load
    and about 200 MHz lower while power-capped; memory at 2619 MHz throughout."""
    times = np.arange(start_s - 1.0, start_s + window_s + 1.0, 1.0 / HZ)
    inside = (times >= start_s) & (times <= start_s + window_s)
    capped = rng.random() < 0.2
    capped_at = capped & inside & (times > start_s + window_s / 2)
    power = np.where(inside, power_w, IDLE_POWER_W) + rng.normal(0.0, 4.0, times.size)
    temperature = 44.0 + 16.0 * np.clip((times - start_s) / 30.0, 0.0, 1.0)
    boost = 1980.0 - 15.0 * (np.arange(times.size) % 3)  # the boost clock moves in 15 MHz steps
    sm_clock = np.where(inside, np.where(capped_at, boost - 210.0, boost), 345.0)
    return [
        Sample(
            timestamp_s=float(t),
            gpu_index=0,
            power_w=float(p),
            temperature_c=float(c),
            memory_used_mb=5400.0 if i else 1100.0,
            memory_total_mb=81559.0,
            sm_utilisation_pct=94.0 if i else 0.0,
            throttle_reasons=SW_POWER_CAP if cap else 0,
            sm_clock_mhz=float(clock),
            memory_clock_mhz=2619.0,
        )
        for t, p, c, i, cap, clock in zip(times, power, temperature, inside, capped_at, sm_clock)
    ]


def _energy(
    samples: list[Sample], start_s: float, window_s: float, output_tokens: int, input_tokens: int, estimated: bool
) -> Any:
    """The energy block llem builds from a reading of the samples' mean power over the window."""
    power = np.mean([s.power_w for s in samples if start_s <= s.timestamp_s <= start_s + window_s])
    method = "codecarbon-estimate" if estimated else "nvml-counter"
    device = DeviceEnergy("gpu0", "gpu", float(power * window_s), "GPU-5c1d", "NVIDIA H100 80GB HBM3")
    reading = EnergyReading(method, not estimated, start_s, start_s + window_s, [device])
    baseline = Baseline(
        measured=True,
        power_w=IDLE_POWER_W,
        std_w=1.1,
        samples=300,
        duration_s=30.0,
        requested_duration_s=30.0,
        method=method,
        measured_at=_stamp(START_UNIX_S - 40.0),
        strategy="validated",
        source="cache",
    )
    tokens = Tokens(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        requests=0,
        requests_stopped_by_eos=0,
        batches=0,
        counting="",
    )
    block = energy_block(Selection("auto", None), reading, baseline, tokens, MeasurementSettings(), [])
    chosen = "codecarbon" if estimated else "nvml"
    block.sampler = SamplerRecord(requested="auto", chosen=chosen, unavailable={"zeus": "zeus is not installed"})
    return block


def _environment(gpu: bool) -> Environment:
    gpus = [
        GpuFacts(
            index=0,
            name="NVIDIA H100 80GB HBM3",
            memory_total_mb=81559.0,
            compute_capability="9.0",
            driver="550.54.15",
            uuid="GPU-5c1d",
            power_limit_w=700.0,
            persistence_mode=True,
        )
    ]
    return Environment(
        llem_version="0.1.0",
        python="3.11.7",
        platform="Linux-5.15.0-x86_64-with-glibc2.35",
        hostname="gpu-node-07" if gpu else "laptop",
        cpu_model="AMD EPYC 9454 48-Core Processor" if gpu else "Intel(R) Core(TM) i7-1165G7",
        cpu_count_logical=96 if gpu else 8,
        cpu_affinity=8,
        memory_total_mb=515_000.0 if gpu else 31_800.0,
        torch_threads=8,
        cuda_available=gpu,
        cuda_version="12.4" if gpu else None,
        cuda_visible_devices="0" if gpu else None,
        gpus=gpus if gpu else [],
        packages={"torch": "2.6.0", "transformers": "5.19.0"},
    )


def _named(key: tuple[int, int], chosen: RunKeys) -> bool:
    return key in chosen or (key[0], None) in chosen


def _merge(shared: Mapping[str, Any], dotted: Mapping[str, Any]) -> dict[str, Any]:
    merged = json.loads(json.dumps(shared))
    for name, value in dotted.items():
        *parents, leaf = name.split(".")
        node = merged
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return merged


def _dotted(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            flat.update(_dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _hydra(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _stamp(unix_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix_s))
