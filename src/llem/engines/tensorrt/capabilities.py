"""What TensorRT-LLM 1.2 accepts, in one table, and the rules that read it before any model loads.

TensorRT-LLM 1.2 has two LLM classes: ``tensorrt_llm.LLM`` runs the PyTorch backend (no engine build),
``tensorrt_llm._tensorrt_engine.LLM`` builds or loads a TensorRT engine. They accept different
things (quantisation at build time, the KV-cache dtype, ``fast_build``), so each has a
:class:`BackendTable`. :func:`config_issues` holds on every machine (the study layer runs it on
thousands of experiments: nothing here imports TensorRT-LLM); :func:`device_issues` reads the GPU and
runs in the worker, still before the model loads. ``tests/facts/tensorrt_llm_1_2_1.json`` records the
API these tables follow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from llem.config.fields import ConfigIssue
from llem.config.schema import DType, ExperimentConfig, TensorRTBackend, TensorRTConfig

# The TensorRT-LLM release these tables and the argument mapping follow (the GPU test checks it).
TENSORRT_LLM_VERSION = "1.2.1"

# QuantAlgo values that quantise weights (QUANT_ALGO_LIST: every QuantAlgo but INT8, which is a
# KV-cache quantisation only; int8 weight-only is W8A16).
WEIGHT_QUANT_ALGOS = frozenset(
    {
        "W8A16",
        "W4A16",
        "W4A16_AWQ",
        "W4A8_AWQ",
        "W8A16_GPTQ",
        "W4A16_GPTQ",
        "W8A8_SQ_PER_CHANNEL",
        "W8A8_SQ_PER_TENSOR_PLUGIN",
        "W8A8_SQ_PER_CHANNEL_PER_TOKEN_PLUGIN",
        "W8A8_SQ_PER_CHANNEL_PER_TENSOR_PLUGIN",
        "W8A8_SQ_PER_TENSOR_PER_TOKEN_PLUGIN",
        "W4A8_QSERVE_PER_GROUP",
        "W4A8_QSERVE_PER_CHANNEL",
        "FP8",
        "FP8_PER_CHANNEL_PER_TOKEN",
        "FP8_BLOCK_SCALES",
        "MIXED_PRECISION",
        "NVFP4",
        "W4A8_NVFP4_FP8",
        "W4A8_MXFP4_FP8",
        "W4A8_MXFP4_MXFP8",
        "W4A16_MXFP4",
        "NO_QUANT",
    }
)
KV_CACHE_QUANT_ALGOS = frozenset({"FP8", "INT8", "NVFP4"})  # KV_CACHE_QUANT_ALGO_LIST


@dataclass(frozen=True)
class BackendTable:
    """What one of TensorRT-LLM's LLM classes runs."""

    backend: TensorRTBackend
    llm_class: str  # module path of the class, then its name after the last dot
    dtypes: frozenset[DType]
    quant_algos: frozenset[str]  # tensorrt.quant.quant_algo values (empty: no quant_config argument)
    kv_cache_quant_algos: frozenset[str]  # tensorrt.quant.kv_cache_quant_algo values
    kv_cache_dtypes: frozenset[str]  # tensorrt.kv_cache.dtype values
    decoding: frozenset[str]  # greedy | sampling | beam
    builds_engine: bool  # builds a TensorRT engine (fast_build applies; the build is cached)


# llem measures TensorRT-LLM in 16-bit: its kernels target half precision, and not every model has
# a float32 path. bfloat16 needs compute capability 8.0 (BaseLlmArgs.validate_dtype).
HALF_DTYPES = frozenset({DType.float16, DType.bfloat16})
ALL_DECODING = frozenset({"greedy", "sampling", "beam"})

PYTORCH = BackendTable(
    backend=TensorRTBackend.pytorch,
    llm_class="tensorrt_llm.LLM",
    dtypes=HALF_DTYPES,
    quant_algos=frozenset(),  # TorchLlmArgs.quant_config is no argument: it is read from the checkpoint
    kv_cache_quant_algos=frozenset(),
    kv_cache_dtypes=frozenset({"auto", "fp8"}),  # sync_quant_config_with_kv_cache_config_dtype
    decoding=ALL_DECODING,
    builds_engine=False,
)
TRT = BackendTable(
    backend=TensorRTBackend.trt,
    llm_class="tensorrt_llm._tensorrt_engine.LLM",
    dtypes=HALF_DTYPES,
    quant_algos=WEIGHT_QUANT_ALGOS,
    kv_cache_quant_algos=KV_CACHE_QUANT_ALGOS,
    kv_cache_dtypes=frozenset({"auto"}),  # TrtLlmArgs.validate_kv_cache_dtype
    decoding=ALL_DECODING,
    builds_engine=True,
)
BACKENDS: dict[TensorRTBackend, BackendTable] = {PYTORCH.backend: PYTORCH, TRT.backend: TRT}
DEFAULT_BACKEND = TensorRTBackend.pytorch  # tensorrt_llm.LLM is the PyTorch backend in 1.2

# Lowest CUDA compute capability for a dtype or quantisation (NVIDIA's hardware support matrix).
MIN_COMPUTE_CAPABILITY: dict[str, tuple[int, int]] = {
    "bfloat16": (8, 0),
    "FP8": (8, 9),
    "FP8_PER_CHANNEL_PER_TOKEN": (8, 9),
    "NVFP4": (10, 0),
}


def backend(t: TensorRTConfig | None) -> TensorRTBackend:
    """``tensorrt.engine``; left unset: ``trt`` when a build-time field is set (quantisation and
    ``fast_build`` happen while building an engine), else ``pytorch``."""
    if t is None:
        return DEFAULT_BACKEND
    if t.engine is not None:
        return t.engine
    return TensorRTBackend.trt if t.quant is not None or t.fast_build is not None else DEFAULT_BACKEND


def table(t: TensorRTConfig | None) -> BackendTable:
    """The table of the LLM class :func:`backend` selects."""
    return BACKENDS[backend(t)]


def beam_width(t: TensorRTConfig | None) -> int:
    """Beams per prompt: ``best_of`` (else ``n``) with ``use_beam_search``, else 1."""
    s = t.sampling if t is not None else None
    if s is None or not s.use_beam_search:
        return 1
    return s.best_of or s.n or 1


def config_issues(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    """Issues of the ``tensorrt`` section that hold on every machine."""
    t = cfg.tensorrt
    assert t is not None
    tab = table(t)
    if t.dtype is not None and cfg.dtype is not None and t.dtype.value != cfg.dtype.value:
        yield ConfigIssue("tensorrt.dtype", f"differs from dtype ({cfg.dtype.value}): set only dtype")
    if t.max_input_len is not None and t.max_seq_len is not None and t.max_input_len >= t.max_seq_len:
        yield ConfigIssue("tensorrt.max_input_len", "must be below tensorrt.max_seq_len")
    if t.fast_build is not None and not tab.builds_engine:
        yield ConfigIssue(
            "tensorrt.fast_build", "only the TensorRT path builds an engine: set tensorrt.engine=trt, or remove it"
        )
    yield from _quant_issues(t, tab)
    yield from _kv_cache_issues(t, tab)
    scheduler = t.scheduler
    if scheduler is not None and scheduler.context_chunking_policy is not None and not t.enable_chunked_prefill:
        yield ConfigIssue("tensorrt.scheduler.context_chunking_policy", "needs tensorrt.enable_chunked_prefill=true")
    yield from _sampling_issues(cfg, t)


def _quant_issues(t: TensorRTConfig, tab: BackendTable) -> Iterator[ConfigIssue]:
    quant = t.quant
    if quant is None:
        return
    if not tab.quant_algos:
        yield ConfigIssue(
            "tensorrt.quant",
            "tensorrt_llm.LLM (the PyTorch backend) reads quantisation from the checkpoint: use a "
            "pre-quantised model, or set tensorrt.engine=trt to quantise while building the engine",
        )
        return
    if quant.quant_algo is not None and quant.quant_algo not in tab.quant_algos:
        hint = " (INT8 quantises the KV cache only; int8 weights are W8A16, SmoothQuant W8A8_SQ_PER_CHANNEL)"
        yield ConfigIssue(
            "tensorrt.quant.quant_algo",
            f"{quant.quant_algo} is not a weight quantisation of TensorRT-LLM {TENSORRT_LLM_VERSION}"
            f"{hint if quant.quant_algo == 'INT8' else ''}; one of {', '.join(sorted(tab.quant_algos))}",
        )
    if quant.kv_cache_quant_algo is not None and quant.kv_cache_quant_algo not in tab.kv_cache_quant_algos:
        yield ConfigIssue(
            "tensorrt.quant.kv_cache_quant_algo",
            f"{quant.kv_cache_quant_algo}: one of {', '.join(sorted(tab.kv_cache_quant_algos))}",
        )


def _kv_cache_issues(t: TensorRTConfig, tab: BackendTable) -> Iterator[ConfigIssue]:
    kv = t.kv_cache
    if kv is None or kv.dtype is None or kv.dtype in tab.kv_cache_dtypes:
        return
    if tab.builds_engine:
        yield ConfigIssue(
            "tensorrt.kv_cache.dtype",
            "the TensorRT path takes the KV-cache dtype from tensorrt.quant.kv_cache_quant_algo "
            f"({', '.join(sorted(KV_CACHE_QUANT_ALGOS))}): set that instead",
        )
    else:
        yield ConfigIssue("tensorrt.kv_cache.dtype", f"one of {', '.join(sorted(tab.kv_cache_dtypes))}")


def _sampling_issues(cfg: ExperimentConfig, t: TensorRTConfig) -> Iterator[ConfigIssue]:
    s = t.sampling
    if s is None:
        return
    n = s.n or 1
    if s.best_of is not None and s.best_of < n:
        yield ConfigIssue("tensorrt.sampling.best_of", f"{s.best_of} is below tensorrt.sampling.n ({n})")
    sampling = cfg.decoder.do_sample and cfg.decoder.temperature > 0
    if s.use_beam_search:
        if sampling:
            yield ConfigIssue(
                "tensorrt.sampling.use_beam_search",
                "beam search with sampling: set decoder.do_sample=false (or decoder=deterministic)",
            )
        width = beam_width(t)
        if t.max_beam_width is not None and t.max_beam_width < width:
            yield ConfigIssue(
                "tensorrt.max_beam_width", f"{t.max_beam_width} is below the beam width asked for ({width})"
            )
        return
    if s.length_penalty is not None:
        yield ConfigIssue("tensorrt.sampling.length_penalty", "only applies to beam search (use_beam_search=true)")
    if not sampling and max(n, s.best_of or 1) > 1:
        yield ConfigIssue(
            "tensorrt.sampling.n",
            "greedy decoding returns one sequence per prompt: sample (decoder.do_sample=true, temperature > 0) "
            "or set tensorrt.sampling.use_beam_search=true",
        )


def device_issues(cfg: ExperimentConfig, dtype: DType, capability: tuple[int, int], gpus: int) -> list[str]:
    """What ``cfg`` asks that this machine's GPUs cannot run (checked in the worker, before the model
    loads): ``capability`` of the first GPU, ``gpus`` visible."""
    t = cfg.tensorrt
    needs = tensor_pipeline_gpus(t)
    issues = []
    if needs > gpus:
        issues.append(
            f"tensorrt.tensor_parallel_size x pipeline_parallel_size: {needs} GPUs asked for, {gpus} visible here"
        )
    quant = t.quant if t is not None else None
    quants = (quant.quant_algo, quant.kv_cache_quant_algo) if quant is not None else ()
    asked = [dtype.value, *(q for q in quants if q)]
    for name in asked:
        low = MIN_COMPUTE_CAPABILITY.get(name)
        if low is not None and capability < low:
            issues.append(
                f"{name}: needs a GPU of compute capability {low[0]}.{low[1]} or above; "
                f"this one is {capability[0]}.{capability[1]}"
            )
    return issues


def tensor_pipeline_gpus(t: TensorRTConfig | None) -> int:
    """GPUs TensorRT-LLM uses: tensor x pipeline parallel size."""
    if t is None:
        return 1
    return (t.tensor_parallel_size or 1) * (t.pipeline_parallel_size or 1)
