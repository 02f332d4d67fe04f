"""The result of one measurement (``result.json``) as dataclasses: one type per block.

Units are in the field names (``_s`` seconds, ``_j`` joules, ``_w`` watts, ``_mb`` MiB = 2**20 bytes,
``_c`` °C); docs/result-fields.md says how each figure is obtained. Every block has the same fields
whether or not it was measured: what was not measured is null, and a ``reason`` or warning says why.
:mod:`llem.results.codec` is the one writer and the one reader of these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Major.minor. A reader accepts any minor version of its major one: a minor version only adds fields
# (kept, unread, in ``other_fields``). 1.0: first release. 1.1: model.prepare_time_s, host_load,
# unmeasured blocks with every field of measured ones.
SCHEMA_VERSION = "1.2"


@dataclass(kw_only=True)
class Record:
    """A block of the result. Keys this version does not know are kept in ``other_fields`` and written back."""

    other_fields: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(kw_only=True)
class Tokens(Record):
    """Token counts of the timed window, from the engines' token ids."""

    input_tokens: int  # prompt tokens after truncation, special tokens included, no padding
    output_tokens: int  # generated tokens up to and including the first EOS; no padding
    total_tokens: int  # input + output
    requests: int
    requests_stopped_by_eos: int
    batches: int  # engine calls
    counting: str  # how output tokens are counted


@dataclass(kw_only=True)
class Throughput(Record):
    """Per second of the timed inference window."""

    output_tokens_per_s: float
    total_tokens_per_s: float
    requests_per_s: float
    window: str  # what the denominator is


@dataclass(kw_only=True)
class Distribution(Record):
    """Seconds: mean and percentiles (linear interpolation) of ``count`` samples; null when none."""

    mean_s: float | None = None
    p50_s: float | None = None
    p90_s: float | None = None
    p99_s: float | None = None
    count: int = 0


@dataclass(kw_only=True)
class Latency(Record):
    """Per-request latencies (see ``method``) and the wall time of each engine call."""

    ttft: Distribution  # time to first token, from arrival
    itl: Distribution  # inter-token latency, every gap of every request
    queue: Distribution  # arrival until the engine began the request
    batch_wall: Distribution  # wall time of each engine call
    method: str


@dataclass(kw_only=True)
class EngineBuild(Record):
    """How the engine came to run, timed apart from inference (TensorRT-LLM; its seconds are part of
    ``phases.load``)."""

    backend: str  # pytorch | trt
    cache: str  # built | reused (from llem's cache) | given (an engine folder as the model) | none (no engine)
    seconds: float  # the LLM constructor: engine build or engine load, and the runtime's start
    cache_key: str | None = None  # over model files, build options, TensorRT-LLM version and GPU model
    engine_dir: str | None = None  # the cached engine folder


@dataclass(kw_only=True)
class EngineInfo(Record):
    name: str
    version: str | None  # installed distribution version
    effective_config: dict[str, Any]  # the value the engine used for every setting
    build: EngineBuild | None = None  # engines that build or load a compiled engine (TensorRT-LLM)


@dataclass(kw_only=True)
class ModelInfo(Record):
    name: str  # the ``model`` setting
    path: str  # the folder or hub id loaded
    device: str
    n_parameters: int
    load_time_s: float  # tokenizer + model load (preparation excluded)
    prepare_time_s: float | None = None  # one-time preparation of a built-in model; null when already prepared


@dataclass(kw_only=True)
class Timestamps(Record):
    """UTC, ISO 8601, second resolution."""

    started_at: str
    inference_start: str
    inference_end: str
    finished_at: str


@dataclass(kw_only=True)
class Memory(Record):
    """MiB. CUDA figures are torch's peaks since load (null off CUDA or when another process held the model)."""

    rss_after_load_mb: float
    peak_rss_mb: float
    peak_rss_scope: str
    cuda_peak_allocated_mb: float | None = None
    cuda_peak_reserved_mb: float | None = None
    cuda_peak_note: str | None = None
    kv_cache_blocks: int | None = None  # vLLM
    kv_cache_tokens: int | None = None  # vLLM


@dataclass(kw_only=True)
class Flops(Record):
    total: float | None
    per_output_token: float | None
    method: str
    confidence: str
    scope: str | None = None


@dataclass(kw_only=True)
class Baseline(Record):
    """Idle power of the measured devices, measured before the model loaded (or why there is none)."""

    measured: bool
    reason: str | None = None  # why not measured
    power_w: float | None = None
    std_w: float | None = None
    samples: int | None = None
    duration_s: float | None = None  # seconds actually measured
    requested_duration_s: float | None = None  # baseline.duration_seconds as configured
    method: str | None = None
    measured_at: str | None = None
    cache_age_s: float | None = None
    strategy: str | None = None
    source: str | None = None
    spot_check: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. a polled trace the polling did not resolve


@dataclass(kw_only=True)
class SamplerRecord(Record):
    requested: str | None  # the energy_sampler setting
    chosen: str | None  # the sampler that measured
    unavailable: dict[str, str] = field(default_factory=dict)  # sampler -> why it could not run here


@dataclass(kw_only=True)
class EnergyDevice(Record):
    label: str
    scope: str
    name: str | None
    identity: str
    energy_j: float | None


@dataclass(kw_only=True)
class EnergyWindow(Record):
    start_unix_s: float
    end_unix_s: float
    duration_s: float


@dataclass(kw_only=True)
class Carbon(Record):
    gco2e: float
    intensity_gco2_kwh: float | None
    pue: float | None
    pue_configured: bool
    location: str | None
    source: str
    energy_basis: str


# How each per-token energy figure is divided; recorded in every energy block.
ENERGY_DENOMINATORS = {
    "energy_per_output_token_j": "energy_j / output_tokens",
    "energy_per_token_j": "energy_j / total_tokens (input + output)",
    "tokens_per_joule": "output_tokens / energy_j",
    "adjusted_energy_per_output_token_j": "adjusted_energy_j / output_tokens",
}


@dataclass(kw_only=True)
class Energy(Record):
    """Energy of the timed window; every figure null (with ``reason``) when nothing measured it."""

    method: str
    measured: bool
    sampler: SamplerRecord
    reason: str | None = None
    scope: list[str] | None = None
    energy_j: float | None = None
    per_device_j: dict[str, float | None] | None = None
    devices: list[EnergyDevice] = field(default_factory=list)
    window: EnergyWindow | None = None
    window_s: float | None = None
    avg_power_w: float | None = None
    baseline: Baseline | None = None
    adjusted_energy_j: float | None = None
    energy_per_output_token_j: float | None = None
    energy_per_token_j: float | None = None
    tokens_per_joule: float | None = None
    adjusted_energy_per_output_token_j: float | None = None
    denominators: dict[str, str] = field(default_factory=lambda: dict(ENERGY_DENOMINATORS))
    carbon: Carbon | None = None
    carbon_gco2e: float | None = None
    power_samples: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # sampler-specific facts
    warnings: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class TelemetryGpu(Record):
    index: int
    name: str | None
    uuid: str | None


@dataclass(kw_only=True)
class GpuThrottling(Record):
    """One GPU inside the window; durations in seconds."""

    thermal_s: float
    power_s: float
    hw_slowdown_s: float
    throttled: bool
    max_temperature_c: float | None
    start_temperature_c: float | None
    end_temperature_c: float | None
    temperature_drift_c: float | None
    samples: int


@dataclass(kw_only=True)
class Throttling(Record):
    throttled: bool
    thermal_s: float
    power_s: float
    hw_slowdown_s: float
    max_temperature_c: float | None
    per_gpu: dict[str, GpuThrottling]


@dataclass(kw_only=True)
class Timeseries(Record):
    file: str
    rows: int
    hz: float
    columns: list[str]


@dataclass(kw_only=True)
class Telemetry(Record):
    """GPU telemetry (NVML) during the window, or why there is none."""

    available: bool
    reason: str | None = None
    hz: float | None = None
    gpus: list[TelemetryGpu] = field(default_factory=list)
    samples: int | None = None
    span_s: float | None = None
    sampler_cpu_s: float | None = None
    unsupported_queries: list[str] = field(default_factory=list)
    throttling: Throttling | None = None
    timeseries: Timeseries | None = None


@dataclass(kw_only=True)
class HostLoad(Record):
    """How busy the host's CPUs were around the timed window (the CPUs this process may use)."""

    usable_cpus: int  # os.sched_getaffinity
    load_avg_1m_start: float | None  # os.getloadavg, whole host
    load_avg_1m_end: float | None
    runnable_start: int | None  # procs_running in /proc/stat, this process's threads included
    runnable_end: int | None
    window_s: float
    busy_cpu_s: float | None  # non-idle CPU time of the usable CPUs (/proc/stat)
    own_cpu_s: float  # CPU time of this process and its children
    other_cpu_s: float | None  # busy - own: other processes and the kernel
    other_cpu_share: float | None  # other_cpu_s / (window_s x usable_cpus)
    steal_s: float | None  # time a hypervisor gave the usable CPUs to other guests
    busy: bool  # other processes took over 25% of the usable CPUs' time (a measurement warning says so)


@dataclass(kw_only=True)
class Warmup(Record):
    enabled: bool
    mode: str | None = None  # fixed | convergence
    n_warmup: int | None = None
    prompts: int | None = None
    batches: int | None = None
    batch_size: int | None = None
    output_tokens_per_prompt: int | None = None
    iterations: int | None = None
    final_cv: float | None = None
    converged: bool | None = None


@dataclass(kw_only=True)
class ThermalFloor(Record):
    waited_s: float
    configured_s: float
    skipped: str | None


@dataclass(kw_only=True)
class Phases(Record):
    """Wall seconds of each step of the protocol; null for a step that did not run."""

    environment: float | None = None
    baseline: float | None = None
    prepare: float | None = None
    load: float | None = None
    prompts: float | None = None
    warmup: float | None = None
    thermal_floor: float | None = None
    inference: float | None = None
    flops: float | None = None

    def total_s(self) -> float:
        """Seconds of every step that ran."""
        steps = (self.environment, self.baseline, self.prepare, self.load, self.prompts, self.warmup)
        return sum(s for s in (*steps, self.thermal_floor, self.inference, self.flops) if s is not None)


@dataclass(kw_only=True)
class GpuFacts(Record):
    index: int
    name: str
    memory_total_mb: float
    compute_capability: str
    driver: str | None = None
    uuid: str | None = None
    mig_uuid: str | None = None
    nvml_index: int | None = None
    power_limit_w: float | None = None
    persistence_mode: bool | None = None


@dataclass(kw_only=True)
class Environment(Record):
    llem_version: str
    python: str
    platform: str
    hostname: str
    cpu_model: str
    cpu_count_logical: int | None
    cpu_affinity: int | None
    memory_total_mb: float
    torch_threads: int
    cuda_available: bool
    cuda_version: str | None
    cuda_visible_devices: str | None
    gpus: list[GpuFacts]
    packages: dict[str, str]


@dataclass(kw_only=True)
class RunResult(Record):
    """``result.json``."""

    schema_version: str = SCHEMA_VERSION
    llem_version: str
    config_hash: str
    config: dict[str, Any]  # the resolved config that ran
    engine: EngineInfo
    model: ModelInfo
    timestamps: Timestamps
    tokens: Tokens
    inference_time_s: float
    throughput: Throughput
    latency: Latency
    memory: Memory
    flops: Flops
    energy: Energy
    telemetry: Telemetry
    warmup: Warmup
    thermal_floor: ThermalFloor
    phases_s: Phases
    host_load: HostLoad | None = None  # null in results of schema 1.0
    environment: Environment
    warnings: list[str]
