"""The experiment schema: one dataclass per section, registered in Hydra's ConfigStore.

Field names, types and defaults follow the config reference. Engine-section fields default to
``None``, meaning "the engine's own default applies"; the engine records its effective value in
the result. Enums (not ``typing.Literal``) because OmegaConf validates them; member names equal
their values so YAML and the command line write the plain value (``dtype=bfloat16``).

Optional sub-sections and free-form mappings default to an empty instance, not ``None``: Hydra
cannot set a field inside a ``None`` node, and this way ``lora.adapter_id=x`` or
``tensorrt.quant.quant_algo=W8A16`` work on the command line. A built config (see
:func:`llem.config.load.build`) holds ``None`` for any of them left entirely at its defaults, so
"not set" has one form, and one hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

# ---------------------------------------------------------------------------------------------
# Enumerations
# ---------------------------------------------------------------------------------------------


class Engine(str, Enum):
    """Inference engines llem can measure."""

    transformers = "transformers"
    vllm = "vllm"
    tensorrt = "tensorrt"


class DType(str, Enum):
    """Weight and activation dtype of the model."""

    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


class HalfDType(str, Enum):
    """A 16-bit floating dtype (autocast, TensorRT build dtype)."""

    float16 = "float16"
    bfloat16 = "bfloat16"


class DatasetOrder(str, Enum):
    """Prompt order: file order, grouped by a ``source`` field, or a seeded shuffle."""

    interleaved = "interleaved"
    grouped = "grouped"
    shuffled = "shuffled"


class DecoderPreset(str, Enum):
    """Named decoding settings; explicit decoder fields apply on top."""

    deterministic = "deterministic"
    standard = "standard"
    creative = "creative"
    factual = "factual"


class EnergySampler(str, Enum):
    """Energy source; ``auto`` picks the best available. ``None`` in the config: throughput only."""

    auto = "auto"
    nvml = "nvml"
    zeus = "zeus"
    rapl = "rapl"
    codecarbon = "codecarbon"


class BaselineStrategy(str, Enum):
    """How the idle power baseline is obtained."""

    validated = "validated"
    cached = "cached"
    fresh = "fresh"


class AttnImplementation(str, Enum):
    sdpa = "sdpa"
    flash_attention_2 = "flash_attention_2"
    flash_attention_3 = "flash_attention_3"
    eager = "eager"


class BnbComputeDType(str, Enum):
    float16 = "float16"
    bfloat16 = "bfloat16"
    float32 = "float32"


class BnbQuantType(str, Enum):
    nf4 = "nf4"
    fp4 = "fp4"


class CacheImplementation(str, Enum):
    static = "static"
    offloaded_static = "offloaded_static"
    sliding_window = "sliding_window"


class VllmKvCacheDType(str, Enum):
    """KV-cache element types of vLLM 0.32 (``CacheDType``); ``auto`` = the model dtype."""

    auto = "auto"
    float16 = "float16"
    bfloat16 = "bfloat16"
    fp8 = "fp8"
    fp8_e4m3 = "fp8_e4m3"
    fp8_e5m2 = "fp8_e5m2"
    fp8_inc = "fp8_inc"
    nvfp4 = "nvfp4"


class VllmQuantization(str, Enum):
    """Weight quantisation methods of vLLM 0.32 (``QUANTIZATION_METHODS``); None = read from the model."""

    awq = "awq"
    awq_marlin = "awq_marlin"
    gptq = "gptq"
    gptq_marlin = "gptq_marlin"
    fp8 = "fp8"
    fbgemm_fp8 = "fbgemm_fp8"
    modelopt = "modelopt"
    modelopt_fp4 = "modelopt_fp4"
    mxfp4 = "mxfp4"
    experts_int8 = "experts_int8"
    moe_wna16 = "moe_wna16"
    torchao = "torchao"
    quark = "quark"
    inc = "inc"


class VllmExecutorBackend(str, Enum):
    """How vLLM runs its workers: processes (mp), Ray, or one process (uni)."""

    mp = "mp"
    ray = "ray"
    uni = "uni"


class TensorRTBackend(str, Enum):
    """Which LLM class of TensorRT-LLM 1.2 runs the model."""

    pytorch = "pytorch"  # tensorrt_llm.LLM: the PyTorch backend, no engine build
    trt = "trt"  # tensorrt_llm._tensorrt_engine.LLM: builds (or loads) a TensorRT engine


class TensorRTCapacityPolicy(str, Enum):
    """TensorRT-LLM's ``CapacitySchedulerPolicy``: how many requests the scheduler admits."""

    MAX_UTILIZATION = "MAX_UTILIZATION"
    GUARANTEED_NO_EVICT = "GUARANTEED_NO_EVICT"
    STATIC_BATCH = "STATIC_BATCH"


class TensorRTChunkingPolicy(str, Enum):
    """TensorRT-LLM's ``ContextChunkingPolicy`` (with ``enable_chunked_prefill``)."""

    FIRST_COME_FIRST_SERVED = "FIRST_COME_FIRST_SERVED"
    EQUAL_PROGRESS = "EQUAL_PROGRESS"


# ---------------------------------------------------------------------------------------------
# Shared sections
# ---------------------------------------------------------------------------------------------


@dataclass
class DatasetConfig:
    """Which prompts are measured."""

    # built-in alias (builtin, synthetic, aienergyscore) or a path to a .jsonl file
    source: str = "builtin"
    # number of prompts to measure
    n_prompts: int = 100
    # interleaved (file order) | grouped (by a `source` field) | shuffled (seeded by random_seed)
    order: DatasetOrder = DatasetOrder.interleaved
    # jsonl: the field holding the prompt; None = first of prompt, text, instruction, input, question
    prompt_field: Optional[str] = None
    # synthetic: exact prompt length in tokens of the model's tokenizer
    input_len: Optional[int] = None
    # synthetic: output tokens per prompt (sets max_output_tokens and min_new_tokens; other values are an error)
    output_len: Optional[int] = None
    # synthetic: seed of the random token draw; None = random_seed
    seed: Optional[int] = None
    # wrap each prompt in the tokenizer's chat template as a user turn (both engines alike);
    # None = when the tokenizer has a chat template (never for synthetic prompts, which are token counts)
    chat_template: Optional[bool] = None


@dataclass
class DecoderConfig:
    """Decoding settings shared by all engines."""

    # sampling temperature; 0 = greedy
    temperature: float = 1.0
    # sample (true) or take the most likely token (false); ignored when temperature = 0
    do_sample: bool = True
    # top-k filter; 0 = disabled
    top_k: int = 50
    # nucleus filter; 1.0 = disabled
    top_p: float = 1.0
    # repetition penalty; 1.0 = none
    repetition_penalty: float = 1.0
    # min-p filter; None = disabled
    min_p: Optional[float] = None
    # minimum generated tokens per request; None = engine default (0)
    min_new_tokens: Optional[int] = None
    # named preset; its values apply first, explicit fields on top
    preset: Optional[DecoderPreset] = None


@dataclass
class WarmupConfig:
    """Warm-up before the measured window."""

    # run a warm-up phase
    enabled: bool = True
    # fixed mode: warm-up prompts at the configured batch size and full output length
    n_warmup: int = 5
    # wait after warm-up, seconds (GPU only; below 30 s a measurement warning is recorded)
    thermal_floor_seconds: float = 60.0
    # CV mode: run until latency CV < cv_threshold (replaces n_warmup)
    convergence_detection: bool = False
    # CV mode: target coefficient of variation of the last window_size latencies
    cv_threshold: float = 0.05
    # CV mode: cap on warm-up prompts
    max_prompts: int = 20
    # CV mode: sliding window size
    window_size: int = 3
    # CV mode: prompts before convergence is checked
    min_prompts: int = 5


@dataclass
class BaselineConfig:
    """Idle power baseline, measured before the model loads."""

    # measure an idle baseline
    enabled: bool = True
    # baseline duration, seconds (5 to 120)
    duration_seconds: float = 30.0
    # validated (cached + spot checks) | cached (TTL) | fresh (every experiment)
    strategy: BaselineStrategy = BaselineStrategy.validated
    # lifetime of a cached baseline, seconds (min 60)
    cache_ttl_seconds: float = 7200.0
    # validated: spot-check every N experiments
    validation_interval: int = 5
    # validated: relative power drift that triggers a re-measurement (0.01 to 0.50)
    drift_threshold: float = 0.10


@dataclass
class LoRAConfig:
    """A LoRA adapter applied to the model (exactly one of adapter_id, adapter_path)."""

    # hub id of the adapter
    adapter_id: Optional[str] = None
    # local folder of the adapter
    adapter_path: Optional[str] = None
    # false: measure the unmerged adapter's overhead; true: merge first (deployed cost)
    merge_weights: bool = False


# ---------------------------------------------------------------------------------------------
# Engine sections
# ---------------------------------------------------------------------------------------------


@dataclass
class TransformersConfig:
    """Hugging Face Transformers engine; None = the engine default noted on each field."""

    batch_size: Optional[int] = None  # -> 1
    attn_implementation: Optional[AttnImplementation] = None  # -> sdpa
    torch_compile: Optional[bool] = None  # -> false
    torch_compile_mode: Optional[str] = None  # -> default
    torch_compile_backend: Optional[str] = None  # -> inductor
    load_in_4bit: Optional[bool] = None  # bitsandbytes 4-bit weights (CUDA only)
    load_in_8bit: Optional[bool] = None  # bitsandbytes 8-bit weights (CUDA only)
    bnb_4bit_compute_dtype: Optional[BnbComputeDType] = None
    bnb_4bit_quant_type: Optional[BnbQuantType] = None
    bnb_4bit_use_double_quant: Optional[bool] = None
    use_cache: Optional[bool] = None  # -> true
    cache_implementation: Optional[CacheImplementation] = None  # -> dynamic cache
    num_beams: Optional[int] = None  # -> 1 (beam search when > 1)
    early_stopping: Optional[bool] = None  # beam search only
    length_penalty: Optional[float] = None  # -> 1.0, beam search only
    no_repeat_ngram_size: Optional[int] = None  # -> 0 (off)
    prompt_lookup_num_tokens: Optional[int] = None  # prompt-lookup speculative decoding
    device_map: Optional[str] = None  # -> auto on CUDA, cpu otherwise
    max_memory: Optional[Dict[str, str]] = field(default_factory=dict)  # per-device caps, e.g. {"0": "20GiB"}
    low_cpu_mem_usage: Optional[bool] = None  # -> true
    allow_tf32: Optional[bool] = None  # -> torch default (false for matmul)
    autocast_enabled: Optional[bool] = None  # -> false
    autocast_dtype: Optional[HalfDType] = None  # -> the experiment dtype
    tp_plan: Optional[str] = None  # tensor parallel plan ("auto"); needs a torchrun launch
    tp_size: Optional[int] = None  # tensor parallel degree


@dataclass
class VllmSpeculativeConfig:
    model: Optional[str] = None  # draft model
    num_speculative_tokens: Optional[int] = None
    method: Optional[str] = None  # e.g. ngram, eagle


@dataclass
class VllmAttentionConfig:
    """vLLM ``AttentionConfig`` (``EngineArgs.attention_config``)."""

    backend: Optional[str] = None  # attention backend name, e.g. FLASH_ATTN, FLASHINFER, CPU_ATTN; -> vLLM's choice
    flash_attn_version: Optional[int] = None  # 2 | 3 | 4
    flash_attn_max_num_splits_for_cuda_graph: Optional[int] = None  # -> 32
    use_prefill_query_quantization: Optional[bool] = None  # -> false
    disable_flashinfer_q_quantization: Optional[bool] = None  # -> false
    use_trtllm_attention: Optional[bool] = None


@dataclass
class VllmEngineConfig:
    """vLLM ``LLM(...)`` engine arguments (``EngineArgs`` of vLLM 0.32)."""

    gpu_memory_utilization: Optional[float] = None  # -> 0.9 (fraction of GPU memory)
    cpu_offload_gb: Optional[float] = None  # -> 0 (GiB)
    block_size: Optional[int] = None  # tokens per KV block -> 16 on CUDA, 128 on CPU
    kv_cache_dtype: Optional[VllmKvCacheDType] = None  # -> auto
    enforce_eager: Optional[bool] = None  # -> false on CUDA, true on CPU (llem's CPU default)
    enable_chunked_prefill: Optional[bool] = None  # -> vLLM's choice (on)
    max_num_seqs: Optional[int] = None  # -> 256 (concurrent requests)
    max_num_batched_tokens: Optional[int] = None  # -> vLLM's choice per device
    max_model_len: Optional[int] = None  # tokens -> the model's context length
    tensor_parallel_size: Optional[int] = None  # -> 1
    pipeline_parallel_size: Optional[int] = None  # -> 1
    enable_prefix_caching: Optional[bool] = None  # -> false (llem's default: repeated prompts would hit the cache)
    quantization: Optional[VllmQuantization] = None  # -> from the model's config
    distributed_executor_backend: Optional[VllmExecutorBackend] = None  # -> vLLM's choice
    speculative_config: Optional[VllmSpeculativeConfig] = field(default_factory=VllmSpeculativeConfig)
    offload_group_size: Optional[int] = None  # -> 0 (off)
    offload_num_in_group: Optional[int] = None  # -> 1
    offload_prefetch_step: Optional[int] = None  # -> 1
    offload_params: Optional[List[str]] = None
    disable_custom_all_reduce: Optional[bool] = None  # -> false
    kv_cache_memory_bytes: Optional[int] = None  # bytes; exclusive with gpu_memory_utilization; -> 1 GiB on CPU
    compilation_config: Optional[Dict[str, Any]] = field(default_factory=dict)  # passed through to vLLM
    attention_config: Optional[VllmAttentionConfig] = field(default_factory=VllmAttentionConfig)


@dataclass
class VllmSamplingConfig:
    """vLLM ``SamplingParams`` extras beyond the shared decoder."""

    max_tokens: Optional[int] = None  # -> max_output_tokens
    min_tokens: Optional[int] = None  # -> decoder.min_new_tokens, else 0
    presence_penalty: Optional[float] = None  # -> 0.0
    frequency_penalty: Optional[float] = None  # -> 0.0
    ignore_eos: Optional[bool] = None  # -> false
    n: Optional[int] = None  # -> 1 (output sequences per prompt)


@dataclass
class VllmBeamSearchConfig:
    """vLLM beam search, ``LLM.beam_search`` with ``BeamSearchParams`` (replaces sampling when set)."""

    beam_width: Optional[int] = None  # >= 1 -> 1
    length_penalty: Optional[float] = None  # -> 1.0
    max_tokens: Optional[int] = None  # -> max_output_tokens
    ignore_eos: Optional[bool] = None  # -> false


@dataclass
class VllmConfig:
    engine: Optional[VllmEngineConfig] = field(default_factory=VllmEngineConfig)
    sampling: Optional[VllmSamplingConfig] = field(default_factory=VllmSamplingConfig)
    # setting any field selects beam search
    beam_search: Optional[VllmBeamSearchConfig] = field(default_factory=VllmBeamSearchConfig)


@dataclass
class TensorRTQuantConfig:
    """``QuantConfig`` of TensorRT-LLM 1.2: quantisation at engine build (``tensorrt.engine=trt`` only; the
    PyTorch backend reads it from a pre-quantised checkpoint)."""

    quant_algo: Optional[str] = None  # a QuantAlgo name, e.g. FP8, W8A16 (int8 weight-only), W4A16_AWQ; -> none
    kv_cache_quant_algo: Optional[str] = None  # FP8 | INT8 | NVFP4; -> none (the model dtype)


@dataclass
class TensorRTKvCacheConfig:
    """``KvCacheConfig`` of TensorRT-LLM 1.2."""

    enable_block_reuse: Optional[bool] = None  # -> false (llem's default: repeated prompts would hit the cache)
    free_gpu_memory_fraction: Optional[float] = None  # -> 0.9 (of the GPU memory free after loading)
    max_tokens: Optional[int] = None  # -> none (the memory fraction decides)
    tokens_per_block: Optional[int] = None  # -> 32
    dtype: Optional[str] = None  # KV-cache dtype, PyTorch backend only: auto | fp8; -> auto (the model dtype)


@dataclass
class TensorRTSchedulerConfig:
    """``SchedulerConfig`` of TensorRT-LLM 1.2."""

    capacity_scheduler_policy: Optional[TensorRTCapacityPolicy] = None  # -> GUARANTEED_NO_EVICT
    context_chunking_policy: Optional[TensorRTChunkingPolicy] = None  # -> none (chunking off)


@dataclass
class TensorRTSamplingConfig:
    """``SamplingParams`` extras beyond the shared decoder. Beam search: ``use_beam_search`` with a beam
    width of ``best_of`` (else ``n``); ``n`` sequences are returned."""

    n: Optional[int] = None  # -> 1 (sequences returned per prompt)
    best_of: Optional[int] = None  # -> n (sequences considered; the beam width in beam search)
    use_beam_search: Optional[bool] = None  # -> false
    length_penalty: Optional[float] = None  # beam search -> 0.0 (the runtime's default)
    presence_penalty: Optional[float] = None  # -> 0.0
    frequency_penalty: Optional[float] = None  # -> 0.0
    ignore_eos: Optional[bool] = None  # -> false
    end_id: Optional[int] = None  # -> the tokenizer's EOS
    pad_id: Optional[int] = None  # -> the tokenizer's pad token, else end_id


@dataclass
class TensorRTConfig:
    """TensorRT-LLM 1.2 ``LLM(...)`` arguments. A built engine folder is passed as ``model``. On the
    TensorRT path the max_* fields fix the built engine's shape."""

    engine: Optional[TensorRTBackend] = None  # -> trt when quant or fast_build is set, else pytorch
    max_batch_size: Optional[int] = None  # -> 2048 (requests in flight)
    max_num_tokens: Optional[int] = None  # -> 8192 (tokens batched per step)
    max_seq_len: Optional[int] = None  # tokens, prompt + output -> the model's context length
    max_input_len: Optional[int] = None  # -> 1024 tokens
    max_beam_width: Optional[int] = None  # -> the beam width asked for, else 1
    tensor_parallel_size: Optional[int] = None  # -> 1
    pipeline_parallel_size: Optional[int] = None  # -> 1
    dtype: Optional[HalfDType] = None  # -> the experiment dtype
    enable_chunked_prefill: Optional[bool] = None  # -> false
    fast_build: Optional[bool] = None  # TensorRT path only -> false
    quant: Optional[TensorRTQuantConfig] = field(default_factory=TensorRTQuantConfig)
    kv_cache: Optional[TensorRTKvCacheConfig] = field(default_factory=TensorRTKvCacheConfig)
    scheduler: Optional[TensorRTSchedulerConfig] = field(default_factory=TensorRTSchedulerConfig)
    sampling: Optional[TensorRTSamplingConfig] = field(default_factory=TensorRTSamplingConfig)


# ---------------------------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------------------------


@dataclass
class ExperimentConfig:
    """One measured configuration. Only the selected engine's section may be non-null."""

    # hub id, local folder, or a built-in alias (llem-tiny, smollm2-135m)
    model: str = "smollm2-135m"
    # transformers | vllm | tensorrt (select with the engine/ group: engine=vllm)
    engine: Engine = Engine.transformers
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    # float32 | float16 | bfloat16; None = the engine's choice for the device: bfloat16 on a GPU; float32 on
    # a CPU (vLLM: bfloat16 where the CPU has native bfloat16); the dtype used is recorded in the result
    dtype: Optional[DType] = None
    # seeds the inference RNGs and the dataset order
    random_seed: int = 42
    # truncate prompts to this many tokens; None = no truncation
    max_input_tokens: Optional[int] = 256
    # cap on generated tokens per request; None = the engine's own limit
    max_output_tokens: Optional[int] = 256
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    warmup: WarmupConfig = field(default_factory=WarmupConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    # auto | nvml | zeus | rapl | codecarbon | null (throughput only)
    energy_sampler: Optional[EnergySampler] = EnergySampler.auto
    # write timeseries.parquet (NVML sampling runs anyway for throttle detection)
    gpu_telemetry: bool = True
    transformers: Optional[TransformersConfig] = None
    vllm: Optional[VllmConfig] = None
    tensorrt: Optional[TensorRTConfig] = None
    lora: Optional[LoRAConfig] = field(default_factory=LoRAConfig)
    # extra keyword arguments for the engine's load and generate calls
    passthrough_kwargs: Optional[Dict[str, Any]] = field(default_factory=dict)
    # where the job writes its files; None = the Hydra job directory
    output_dir: Optional[str] = None


ENGINE_SECTIONS: dict[Engine, type] = {
    Engine.transformers: TransformersConfig,
    Engine.vllm: VllmConfig,
    Engine.tensorrt: TensorRTConfig,
}


@dataclass
class StudyRunInfo:
    """Where a study job sits in its study; set by llem's sweeper, recorded, never hashed."""

    study_name: str = ""
    design_hash: str = ""
    position: int = 0  # 0-based place in the study's run order
    cycle: int = 0  # 0-based
    experiment_id: str = ""


class DeviceIsolation(str, Enum):
    """What to do about other processes found on the job's GPUs before measuring."""

    off = "off"
    warn = "warn"
    error = "error"


@dataclass
class RunnerConfig:
    """How a job's measurement runs; recorded with the job, never part of what is measured."""

    # process (a fresh worker process; `local` is its other name) | inline (in the task process,
    # for debugging) | docker | docker:<image>; None = $LLEM_RUNNER_<ENGINE>, the user config, process
    kind: Optional[str] = None
    # stop the measurement after this many seconds (the worker's whole process group); None = no limit
    experiment_timeout_seconds: Optional[float] = None
    # stop a worker that writes no output for this many seconds; None = never
    silence_timeout_seconds: Optional[float] = None
    # other processes on the job's GPUs before measuring: off | warn (recorded) | error
    device_isolation: DeviceIsolation = DeviceIsolation.warn


@dataclass
class JobConfig(ExperimentConfig):
    """What Hydra composes for one job: the experiment, how it runs, and its place in a study."""

    runner: RunnerConfig = field(default_factory=RunnerConfig)
    study_run: Optional[StudyRunInfo] = None


# Sections of a job that are not part of the experiment (never hashed, never in experiment files).
JOB_ONLY_SECTIONS = ("runner", "study_run")
