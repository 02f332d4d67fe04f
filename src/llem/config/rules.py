"""Cross-field rules: what each engine supports, and which fields exclude or need each other.

What an engine supports has one table: the Transformers engine's is below; vLLM's and TensorRT-LLM's
are their engines' capability tables (``llem.engines.<engine>.capabilities``). The rules read them.
Every rule returns the issues it finds on a built :class:`ExperimentConfig`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields

from llem.config.fields import ConfigIssue
from llem.config.schema import (
    AttnImplementation,
    DType,
    Engine,
    ExperimentConfig,
)

# What the Transformers engine runs; vLLM's and TensorRT-LLM's are in their engines' capability tables
# (llem.engines.vllm.capabilities, llem.engines.tensorrt.capabilities), which the rules read.
TRANSFORMERS_DTYPES = frozenset({DType.float32, DType.float16, DType.bfloat16})
TRANSFORMERS_DECODING = frozenset({"greedy", "sampling", "beam"})
VLLM_DECODING = frozenset({"greedy", "sampling", "beam"})  # sampling_params, or LLM.beam_search

# Engines that can apply a LoRA adapter at run time (TensorRT-LLM needs it merged beforehand).
LORA_ENGINES: frozenset[Engine] = frozenset({Engine.transformers, Engine.vllm})

# Attention kernels that have no float32 implementation.
HALF_ONLY_ATTENTION: frozenset[AttnImplementation] = frozenset(
    {AttnImplementation.flash_attention_2, AttnImplementation.flash_attention_3}
)


# Inclusive numeric bounds: dotted path -> (min, max); None = unbounded on that side.
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "random_seed": (0, None),
    "max_input_tokens": (1, None),
    "max_output_tokens": (1, None),
    "dataset.n_prompts": (1, None),
    "dataset.input_len": (1, None),
    "dataset.output_len": (1, None),
    "decoder.temperature": (0.0, None),
    "decoder.top_k": (0, None),
    "decoder.top_p": (0.0, 1.0),
    "decoder.repetition_penalty": (0.0, None),
    "decoder.min_p": (0.0, 1.0),
    "decoder.min_new_tokens": (0, None),
    "warmup.n_warmup": (0, None),
    "warmup.thermal_floor_seconds": (0.0, None),
    "warmup.cv_threshold": (0.0, 1.0),
    "warmup.max_prompts": (1, None),
    "warmup.window_size": (2, None),
    "warmup.min_prompts": (1, None),
    "baseline.duration_seconds": (5.0, 120.0),
    "baseline.cache_ttl_seconds": (60.0, None),
    "baseline.validation_interval": (1, None),
    "baseline.drift_threshold": (0.01, 0.50),
    "transformers.batch_size": (1, None),
    "transformers.num_beams": (1, None),
    "transformers.no_repeat_ngram_size": (0, None),
    "transformers.prompt_lookup_num_tokens": (1, None),
    "transformers.tp_size": (1, None),
    "vllm.engine.gpu_memory_utilization": (0.0, 1.0),
    "vllm.engine.cpu_offload_gb": (0.0, None),
    "vllm.engine.max_num_seqs": (1, None),
    "vllm.engine.tensor_parallel_size": (1, None),
    "vllm.engine.pipeline_parallel_size": (1, None),
    "vllm.engine.kv_cache_memory_bytes": (1, None),
    "vllm.sampling.n": (1, None),
    "vllm.engine.max_num_batched_tokens": (1, None),
    "vllm.engine.max_model_len": (1, None),
    "vllm.engine.block_size": (1, None),
    "vllm.sampling.max_tokens": (1, None),
    "vllm.sampling.min_tokens": (0, None),
    "vllm.sampling.presence_penalty": (-2.0, 2.0),
    "vllm.sampling.frequency_penalty": (-2.0, 2.0),
    "vllm.beam_search.beam_width": (1, None),
    "vllm.beam_search.max_tokens": (1, None),
    "tensorrt.max_batch_size": (1, None),
    "tensorrt.tensor_parallel_size": (1, None),
    "tensorrt.pipeline_parallel_size": (1, None),
    "tensorrt.max_num_tokens": (1, None),
    "tensorrt.max_seq_len": (1, None),
    "tensorrt.max_input_len": (1, None),
    "tensorrt.max_beam_width": (1, None),
    "tensorrt.kv_cache.free_gpu_memory_fraction": (0.0, 1.0),
    "tensorrt.kv_cache.max_tokens": (1, None),
    "tensorrt.kv_cache.tokens_per_block": (1, None),
    "tensorrt.sampling.n": (1, None),
    "tensorrt.sampling.best_of": (1, None),
    "tensorrt.sampling.end_id": (0, None),
    "tensorrt.sampling.pad_id": (0, None),
}

Rule = Callable[[ExperimentConfig], Iterator[ConfigIssue]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    """Register ``fn`` as a cross-field rule."""
    RULES.append(fn)
    return fn


def engine_dtypes(cfg: ExperimentConfig) -> frozenset[DType]:
    """The dtypes the selected engine runs: vLLM's on any device, TensorRT-LLM's on the selected backend."""
    if cfg.engine is Engine.vllm:
        from llem.engines.vllm.capabilities import CPU, CUDA

        return CPU.dtypes | CUDA.dtypes
    if cfg.engine is Engine.tensorrt:
        from llem.engines.tensorrt.capabilities import table

        return table(cfg.tensorrt).dtypes
    return TRANSFORMERS_DTYPES


def engine_decoding(cfg: ExperimentConfig) -> frozenset[str]:
    """The decoding modes (``greedy``, ``sampling``, ``beam``) the selected engine implements."""
    if cfg.engine is Engine.tensorrt:
        from llem.engines.tensorrt.capabilities import table

        return table(cfg.tensorrt).decoding
    return VLLM_DECODING if cfg.engine is Engine.vllm else TRANSFORMERS_DECODING


def decoding_mode(cfg: ExperimentConfig) -> str:
    """``beam``, ``greedy`` or ``sampling``, as the selected engine will decode."""
    if cfg.transformers and (cfg.transformers.num_beams or 1) > 1:
        return "beam"
    if cfg.vllm and cfg.vllm.beam_search is not None:
        return "beam"
    trt_sampling = cfg.tensorrt.sampling if cfg.tensorrt else None
    if trt_sampling and trt_sampling.use_beam_search:
        return "beam"
    if cfg.decoder.temperature == 0 or not cfg.decoder.do_sample:
        return "greedy"
    return "sampling"


def _get(cfg: object, path: str) -> object:
    for part in path.split("."):
        if cfg is None:
            return None
        cfg = getattr(cfg, part)
    return cfg


def _bounds_by_section() -> dict[str, list[tuple[str, str, float | None, float | None]]]:
    """BOUNDS grouped by the section holding each field ("" for top level): section -> [(path, field, low, high)]."""
    grouped: dict[str, list[tuple[str, str, float | None, float | None]]] = {}
    for path, (low, high) in BOUNDS.items():
        section, _, name = path.rpartition(".")
        grouped.setdefault(section, []).append((path, name, low, high))
    return grouped


_BOUNDS_BY_SECTION = _bounds_by_section()  # each section is looked up once per config, not once per field


@rule
def numeric_bounds(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    for section, bounds in _BOUNDS_BY_SECTION.items():
        holder = _get(cfg, section) if section else cfg
        if holder is None:  # an engine section that is not selected
            continue
        for path, name, low, high in bounds:
            value = getattr(holder, name)
            if value is None:
                continue
            # written so that NaN (which the schema check rejects first) fails them too
            if (low is not None and not value >= low) or (high is not None and not value <= high):
                span = f"between {low} and {high}" if high is not None else f"at least {low}"
                yield ConfigIssue(path, f"must be {span}, got {value}")


@rule
def min_new_tokens_within_max(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    low, high = cfg.decoder.min_new_tokens, cfg.max_output_tokens
    if cfg.engine is Engine.vllm:
        return  # vLLM's own limits (vllm.sampling.max_tokens) apply: checked by its table
    if low is not None and high is not None and low > high:
        yield ConfigIssue(
            "decoder.min_new_tokens", f"{low} is above max_output_tokens ({high}): lower it, or raise max_output_tokens"
        )


@rule
def only_selected_engine_section(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    for engine in Engine:
        if engine is not cfg.engine and getattr(cfg, engine.value) is not None:
            yield ConfigIssue(
                engine.value,
                f"section set but engine is {cfg.engine.value}: remove it, or select engine={engine.value}",
            )


@rule
def engine_supports_dtype(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    allowed = engine_dtypes(cfg)
    if cfg.dtype is not None and cfg.dtype not in allowed:
        names = ", ".join(sorted(d.value for d in allowed))
        yield ConfigIssue("dtype", f"{cfg.engine.value} does not run {cfg.dtype.value}; use one of {names}")


@rule
def engine_supports_decoding(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    mode, supported_modes = decoding_mode(cfg), engine_decoding(cfg)
    if mode not in supported_modes:
        supported = ", ".join(sorted(supported_modes))
        yield ConfigIssue("decoder", f"{cfg.engine.value} has no {mode} decoding (supported: {supported})")


@rule
def lora_rules(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    if cfg.lora is None:
        return
    if (cfg.lora.adapter_id is None) == (cfg.lora.adapter_path is None):
        yield ConfigIssue("lora", "set exactly one of lora.adapter_id and lora.adapter_path")
    if cfg.engine not in LORA_ENGINES:
        yield ConfigIssue(
            "lora",
            f"{cfg.engine.value} cannot apply a LoRA adapter at run time: merge it into the model "
            "first (peft merge_and_unload), then set model to the merged folder",
        )


@rule
def passthrough_does_not_shadow_fields(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    top_level = {f.name for f in fields(ExperimentConfig)}
    for key in sorted(set(cfg.passthrough_kwargs or {}) & top_level):
        yield ConfigIssue(f"passthrough_kwargs.{key}", f"collides with the top-level field '{key}'; set {key} directly")


@rule
def dataset_rules(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    ds = cfg.dataset
    synthetic = ds.source == "synthetic"
    for name in ("input_len", "output_len"):
        value = getattr(ds, name)
        if synthetic and value is None:
            yield ConfigIssue(f"dataset.{name}", "required by the synthetic dataset (a token count)")
        if not synthetic and value is not None:
            yield ConfigIssue(f"dataset.{name}", "only applies to dataset.source=synthetic")
    if synthetic and ds.input_len and cfg.max_input_tokens and ds.input_len > cfg.max_input_tokens:
        yield ConfigIssue(
            "dataset.input_len",
            f"{ds.input_len} tokens would be truncated to max_input_tokens={cfg.max_input_tokens}; "
            "raise max_input_tokens or set it to null",
        )
    if ds.chat_template and synthetic:
        yield ConfigIssue(
            "dataset.chat_template", "synthetic prompts are exact token counts: a chat template would change them"
        )
    if ds.seed is not None and not synthetic:
        yield ConfigIssue("dataset.seed", "only applies to dataset.source=synthetic (random_seed orders prompts)")


@rule
def warmup_rules(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    w = cfg.warmup
    if w.convergence_detection:
        if w.min_prompts < w.window_size:
            yield ConfigIssue("warmup.min_prompts", f"must be at least warmup.window_size ({w.window_size})")
        if w.max_prompts < w.min_prompts:
            yield ConfigIssue("warmup.max_prompts", f"must be at least warmup.min_prompts ({w.min_prompts})")


@rule
def transformers_rules(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    t = cfg.transformers
    if t is None:
        return
    if t.load_in_4bit and t.load_in_8bit:
        yield ConfigIssue("transformers.load_in_4bit", "cannot be combined with transformers.load_in_8bit: choose one")
    for name in ("bnb_4bit_compute_dtype", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant"):
        if getattr(t, name) is not None and not t.load_in_4bit:
            yield ConfigIssue(f"transformers.{name}", "needs transformers.load_in_4bit=true")
    if t.attn_implementation in HALF_ONLY_ATTENTION and cfg.dtype is DType.float32:
        yield ConfigIssue(
            "transformers.attn_implementation",
            f"{t.attn_implementation.value} has no float32 kernels: use dtype=float16 or bfloat16, or sdpa",
        )
    for name in ("torch_compile_mode", "torch_compile_backend"):
        if getattr(t, name) is not None and not t.torch_compile:
            yield ConfigIssue(f"transformers.{name}", "needs transformers.torch_compile=true")
    if t.cache_implementation is not None and t.use_cache is False:
        yield ConfigIssue("transformers.cache_implementation", "needs transformers.use_cache (it is false)")
    if t.autocast_dtype is not None and not t.autocast_enabled:
        yield ConfigIssue("transformers.autocast_dtype", "needs transformers.autocast_enabled=true")
    beam = (t.num_beams or 1) > 1
    for name in ("early_stopping", "length_penalty"):
        if getattr(t, name) is not None and not beam:
            yield ConfigIssue(f"transformers.{name}", "only applies to beam search: set transformers.num_beams > 1")
    if beam and decoding_mode_samples(cfg):
        yield ConfigIssue(
            "transformers.num_beams",
            "beam search with sampling: set decoder.do_sample=false (or decoder=deterministic)",
        )
    if beam and t.prompt_lookup_num_tokens is not None:
        yield ConfigIssue("transformers.prompt_lookup_num_tokens", "cannot be combined with beam search")
    if t.prompt_lookup_num_tokens is not None and (t.batch_size or 1) > 1:
        yield ConfigIssue(
            "transformers.prompt_lookup_num_tokens", "needs transformers.batch_size=1 (assisted decoding)"
        )
    if t.tp_size is not None and t.tp_plan is None:
        yield ConfigIssue("transformers.tp_size", "needs transformers.tp_plan (e.g. auto)")


def decoding_mode_samples(cfg: ExperimentConfig) -> bool:
    """True when the decoder settings ask for sampling (temperature > 0 and do_sample)."""
    return cfg.decoder.do_sample and cfg.decoder.temperature > 0


@rule
def vllm_rules(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    if cfg.vllm is None:
        return
    from llem.engines.vllm.capabilities import config_issues  # the table of what vLLM accepts

    yield from config_issues(cfg)


@rule
def tensorrt_rules(cfg: ExperimentConfig) -> Iterator[ConfigIssue]:
    if cfg.tensorrt is None:
        return
    from llem.engines.tensorrt.capabilities import config_issues  # the table of what TensorRT-LLM accepts

    yield from config_issues(cfg)


def check_rules(cfg: ExperimentConfig) -> list[ConfigIssue]:
    """All cross-field issues of ``cfg``, in rule order."""
    return [issue for check in RULES for issue in check(cfg)]
