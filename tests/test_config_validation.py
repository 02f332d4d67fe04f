"""Schema checks, renamed keys, cross-field rules and the config hash."""

from __future__ import annotations

import dataclasses
import math

import pytest

from llem.config.fields import _unwrap_optional, check_mapping, check_path_value, field_types
from llem.config.load import config_hash, load_experiment, to_dict
from llem.config.rules import check_rules
from llem.config.schema import DType, Engine, ExperimentConfig, RunnerConfig
from llem.errors import ConfigError


def problems(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        load_experiment(data)
    assert info.value.exit_code == 2
    return str(info.value)


def test_defaults_follow_the_reference():
    cfg = load_experiment({})
    assert cfg.engine is Engine.transformers
    assert cfg.dtype is None  # the engine's choice for the device, recorded in the result
    assert (cfg.random_seed, cfg.max_input_tokens, cfg.max_output_tokens) == (42, 256, 256)
    assert (cfg.dataset.n_prompts, cfg.dataset.order.value) == (100, "interleaved")
    assert (cfg.decoder.temperature, cfg.decoder.top_k, cfg.decoder.top_p) == (1.0, 50, 1.0)
    assert (cfg.warmup.n_warmup, cfg.warmup.thermal_floor_seconds) == (5, 60.0)
    assert (cfg.baseline.duration_seconds, cfg.baseline.strategy.value) == (30.0, "validated")
    assert cfg.energy_sampler.value == "auto" and cfg.gpu_telemetry is True
    assert all(value is None for value in to_dict(cfg.transformers).values())
    assert cfg.vllm is None and cfg.lora is None and cfg.passthrough_kwargs is None


@pytest.mark.parametrize("unset", [{}, {"lora": None}, {"lora": {}}, {"lora": {"adapter_id": None}}])
def test_an_unset_section_has_one_form_and_one_hash(unset):
    cfg = load_experiment(unset)
    assert cfg.lora is None and config_hash(cfg) == config_hash(load_experiment({}))


def test_unset_vllm_sub_sections_are_none_and_set_ones_are_kept():
    cfg = load_experiment({"engine": "vllm", "dtype": "float16", "vllm": {"engine": {"block_size": 16}}})
    assert cfg.vllm.engine.block_size == 16 and cfg.vllm.engine.speculative_config is None
    assert cfg.vllm.sampling is None and cfg.vllm.beam_search is None


def test_unknown_key_suggests_the_closest():
    msg = problems({"transformers": {"batchsize": 4}})
    assert "transformers.batchsize" in msg and "did you mean batch_size" in msg


def test_bad_enum_lists_allowed_values():
    msg = problems({"dtype": "bfloat61"})
    assert "dtype" in msg and "float32, float16, bfloat16" in msg and "did you mean bfloat16" in msg


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"transformers": {"batch_size": "four"}}, "transformers.batch_size: expected int"),
        ({"decoder": {"do_sample": "yes"}}, "decoder.do_sample: expected bool"),
        ({"dataset": 5}, "dataset: expected a mapping"),
        ({"model": None}, "model: must not be null"),
        ({"vllm": {"engine": {"offload_params": [1]}}, "engine": "vllm"}, "vllm.engine.offload_params"),
    ],
)
def test_wrong_types_name_the_key(data, expected):
    assert expected in problems(data)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("backend", "use engine"),
        ("precision", "use dtype"),
        ("n", "use dataset.n_prompts"),
        ("execution", "study_execution"),
    ],
)
def test_old_spec_names_name_their_replacement(old, new):
    msg = problems({old: 1})
    assert f"'{old}' was renamed" in msg and new in msg


RULE_CASES = [
    ({"engine": "tensorrt", "dtype": "float32"}, "dtype: tensorrt does not run float32"),
    (
        {
            "engine": "tensorrt",
            "dtype": "float16",
            "tensorrt": {"sampling": {"beam_width": 4}},
            "decoder": {"do_sample": False},
        },
        "tensorrt.sampling.beam_width: TensorRT-LLM 1.2's SamplingParams has no beam_width",
    ),
    (
        {"transformers": {"load_in_4bit": True, "load_in_8bit": True}},
        "cannot be combined with transformers.load_in_8bit",
    ),
    ({"transformers": {"bnb_4bit_quant_type": "nf4"}}, "needs transformers.load_in_4bit"),
    ({"dtype": "float32", "transformers": {"attn_implementation": "flash_attention_2"}}, "no float32 kernels"),
    ({"transformers": {"num_beams": 4}}, "beam search with sampling"),
    ({"transformers": {"early_stopping": True}}, "only applies to beam search"),
    ({"transformers": {"length_penalty": 0.5, "num_beams": 1}}, "only applies to beam search"),
    ({"engine": "tensorrt", "dtype": "float16", "lora": {"adapter_id": "a/b"}}, "cannot apply a LoRA adapter"),
    ({"lora": {"adapter_id": "a/b", "adapter_path": "/x"}}, "exactly one of lora.adapter_id"),
    ({"lora": {"merge_weights": True}}, "exactly one of lora.adapter_id"),
    ({"lora": {"adapter_id": "a", "adapter_path": "b"}}, "exactly one of lora.adapter_id"),
    ({"vllm": {"engine": {"block_size": 16}}}, "vllm: section set but engine is transformers"),
    ({"engine": "vllm", "transformers": {"batch_size": 2}}, "transformers: section set but engine is vllm"),
    (
        {
            "engine": "vllm",
            "dtype": "float16",
            "vllm": {"engine": {"kv_cache_memory_bytes": 10**9, "gpu_memory_utilization": 0.8}},
        },
        "cannot be combined with vllm.engine.gpu_memory_utilization",
    ),
    (
        {"engine": "vllm", "vllm": {"beam_search": {"beam_width": 2}, "sampling": {"n": 2}}},
        "vllm.beam_search: replaces sampling",
    ),
    ({"engine": "vllm", "vllm": {"beam_search": {"beam_width": 2}}}, "beam search with sampling"),
    ({"engine": "vllm", "vllm": {"sampling": {"min_tokens": 300}}}, "300 is above the maximum of 256 output tokens"),
    ({"engine": "vllm", "vllm": {"sampling": {"max_tokens": 4}}, "decoder": {"min_new_tokens": 8}}, "8 is above"),
    (
        {"engine": "vllm", "max_output_tokens": 4, "decoder": {"min_new_tokens": 8}},
        "decoder.min_new_tokens: 8 is above",
    ),
    ({"engine": "vllm", "vllm": {"engine": {"attention_config": {"flash_attn_version": 1}}}}, "must be 2, 3 or 4"),
    ({"engine": "vllm", "vllm": {"engine": {"offload_num_in_group": 2}}}, "vllm.engine.offload_group_size: needed"),
    ({"engine": "vllm", "vllm": {"engine": {"block_size": 0}}}, "vllm.engine.block_size: must be at least 1"),
    ({"dataset": {"source": "synthetic", "input_len": 8, "output_len": 4, "chat_template": True}}, "exact token"),
    ({"transformers": {"torch_compile_mode": "max-autotune"}}, "needs transformers.torch_compile=true"),
    ({"transformers": {"use_cache": False, "cache_implementation": "static"}}, "needs transformers.use_cache"),
    ({"transformers": {"autocast_dtype": "float16"}}, "needs transformers.autocast_enabled"),
    (
        {"transformers": {"num_beams": 2, "prompt_lookup_num_tokens": 3}, "decoder": {"do_sample": False}},
        "cannot be combined with beam search",
    ),
    ({"transformers": {"prompt_lookup_num_tokens": 3, "batch_size": 4}}, "needs transformers.batch_size=1"),
    ({"passthrough_kwargs": {"dtype": "float16"}}, "collides with the top-level field 'dtype'"),
    ({"dataset": {"source": "synthetic", "input_len": 8}}, "dataset.output_len: required by the synthetic dataset"),
    ({"dataset": {"input_len": 8}}, "only applies to dataset.source=synthetic"),
    (
        {"dataset": {"source": "synthetic", "input_len": 512, "output_len": 8}},
        "dataset.input_len: 512 tokens would be truncated to max_input_tokens=256",
    ),
    (
        {"dataset": {"source": "synthetic", "input_len": 8, "output_len": 8}, "max_output_tokens": 4},
        "max_output_tokens: 4 differs from dataset.output_len (8), which sets it: remove one",
    ),
    (
        {"dataset": {"source": "synthetic", "input_len": 8, "output_len": 8}, "decoder": {"min_new_tokens": 2}},
        "decoder.min_new_tokens: 2 differs from dataset.output_len (8)",
    ),
    ({"baseline": {"duration_seconds": 2}}, "baseline.duration_seconds: must be between 5.0 and 120.0"),
    ({"baseline": {"drift_threshold": 0.9}}, "baseline.drift_threshold: must be between 0.01 and 0.5"),
    ({"baseline": {"cache_ttl_seconds": 10}}, "baseline.cache_ttl_seconds: must be at least 60"),
    ({"decoder": {"top_p": 1.5}}, "decoder.top_p: must be between"),
    ({"dataset": {"n_prompts": 0}}, "dataset.n_prompts: must be at least 1"),
    (
        {"max_output_tokens": 8, "decoder": {"min_new_tokens": 50}},
        "decoder.min_new_tokens: 50 is above max_output_tokens (8)",
    ),
    (
        {"engine": "tensorrt", "dtype": "float16", "max_output_tokens": 8, "decoder": {"min_new_tokens": 9}},
        "decoder.min_new_tokens: 9 is above max_output_tokens (8)",
    ),
    ({"warmup": {"convergence_detection": True, "window_size": 5, "min_prompts": 3}}, "warmup.min_prompts"),
    (
        {"engine": "tensorrt", "dtype": "float16", "tensorrt": {"dtype": "bfloat16"}},
        "tensorrt.dtype: differs from dtype",
    ),
]


@pytest.mark.parametrize(("data", "expected"), RULE_CASES)
def test_cross_field_rules(data, expected):
    assert expected in problems(data)


def test_every_error_is_reported_at_once():
    msg = problems({"transformers": {"load_in_4bit": True, "load_in_8bit": True, "early_stopping": True}})
    assert "2 problems" in msg


def test_engine_tables_are_consulted():
    assert check_rules(load_experiment({"engine": "vllm", "dtype": "bfloat16"})) == []
    assert check_rules(load_experiment({"engine": "vllm", "dtype": "float32"})) == []  # vLLM runs float32
    assert "dtype: tensorrt does not run float32" in problems({"engine": "tensorrt", "dtype": "float32"})


def test_tensorrt_dtypes_and_decoding_are_read_from_its_capability_table(monkeypatch):
    from llem.engines.tensorrt import capabilities

    narrowed = dataclasses.replace(
        capabilities.PYTORCH, dtypes=frozenset({DType.float16}), decoding=frozenset({"greedy", "sampling"})
    )
    monkeypatch.setitem(capabilities.BACKENDS, narrowed.backend, narrowed)
    beam = {"tensorrt": {"sampling": {"use_beam_search": True, "best_of": 2}}}
    msg = problems({"engine": "tensorrt", "dtype": "bfloat16", **beam})
    assert "dtype: tensorrt does not run bfloat16; use one of float16" in msg
    assert "decoder: tensorrt has no beam decoding (supported: greedy, sampling)" in msg


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"vllm": {"engine": {"swap_space": 4}}}, "vllm.engine.swap_space: vLLM 0.32 has no CPU swap space"),
        ({"vllm": {"engine": {"num_scheduler_steps": 8}}}, "no multi-step scheduling"),
        ({"vllm": {"engine": {"max_seq_len_to_capture": 8}}}, "compilation_config.cudagraph_capture_sizes"),
        ({"vllm": {"engine": {"attention": {"engine": "X"}}}}, "use vllm.engine.attention_config"),
        ({"vllm": {"engine": {"attention_config": {"engine": "X"}}}}, "use vllm.engine.attention_config.backend"),
        ({"vllm": {"engine": {"attention_config": {"use_cudnn_prefill": True}}}}, "not in vLLM 0.32's AttentionConfig"),
        ({"vllm": {"beam_search": {"early_stopping": True}}}, "has no early_stopping"),
        ({"vllm": {"engine": {"quantization": "bitsandbytes"}}}, "awq, awq_marlin"),
    ],
)
def test_fields_vllm_no_longer_has_name_their_replacement(data, expected):
    assert expected in problems({"engine": "vllm", **data})


def test_aliases_pytorch_and_quant_config():
    cfg = load_experiment({"pytorch": {"batch_size": 4}})
    assert cfg.transformers.batch_size == 4
    trt = load_experiment(
        {"engine": "tensorrt", "dtype": "float16", "tensorrt": {"quant_config": {"quant_algo": "W8A16"}}}
    )
    assert trt.tensorrt.quant.quant_algo == "W8A16"
    assert "both are set" in problems({"pytorch": {}, "transformers": {}})


def test_decoder_preset_then_explicit_fields():
    cfg = load_experiment({"decoder": {"preset": "creative", "temperature": 0.5}})
    assert (cfg.decoder.temperature, cfg.decoder.top_p, cfg.decoder.repetition_penalty) == (0.5, 0.9, 1.1)
    greedy = load_experiment({"decoder": {"preset": "deterministic"}})
    assert greedy.decoder.temperature == 0.0 and greedy.decoder.do_sample is False


def test_config_hash_is_stable_and_ignores_output_dir():
    a = load_experiment({"model": "m", "dtype": "float16"})
    b = load_experiment({"dtype": "float16", "model": "m", "output_dir": "/elsewhere"})
    c = load_experiment({"model": "m", "dtype": "bfloat16"})
    assert config_hash(a) == config_hash(b) != config_hash(c)
    assert len(config_hash(a)) == 16
    assert to_dict(a)["dtype"] == "float16"


def test_single_override_check():
    assert check_path_value("transformers.batch_size", 4) == []
    assert "did you mean batch_size" in str(check_path_value("transformers.batchsize", 4)[0])
    assert "not a section" in str(check_path_value("model.x", 1)[0])
    assert check_path_value("passthrough_kwargs.anything", 1) == []
    assert check_path_value("model", 123) == []  # Hydra parses model=123 as an int


def float_paths(cls: type, prefix: str = "") -> list[str]:
    """Every float field of dataclass ``cls`` and its sections, as dotted paths."""
    out = []
    for name, tp in field_types(cls).items():
        inner, _ = _unwrap_optional(tp)
        path = f"{prefix}{name}"
        if dataclasses.is_dataclass(inner):
            out += float_paths(inner, path + ".")
        elif inner is float:
            out.append(path)
    return out


def nested(path: str, value: object) -> dict:
    """``{"a": {"b": value}}`` for ``a.b``."""
    head, _, rest = path.partition(".")
    return {head: nested(rest, value) if rest else value}


EXPERIMENT_FLOATS = float_paths(ExperimentConfig)
NON_FINITE = [math.nan, math.inf, -math.inf]


def test_the_float_fields_include_every_section():
    sections = {path.split(".")[0] for path in EXPERIMENT_FLOATS}
    assert {"decoder", "warmup", "baseline", "transformers", "vllm", "tensorrt"} <= sections
    assert len(EXPERIMENT_FLOATS) >= 15


@pytest.mark.parametrize("path", EXPERIMENT_FLOATS)
@pytest.mark.parametrize("value", NON_FINITE)
def test_no_float_field_takes_nan_or_infinity(path, value):
    engine = path.split(".")[0] if path.split(".")[0] in ("vllm", "tensorrt") else "transformers"
    data = {**nested(path, value), "engine": engine, "dtype": "float16"}
    assert f"{path}: must be a finite number, got {value}" in problems(data)
    assert str(check_path_value(path, value)[0]) == f"{path}: must be a finite number, got {value}"


@pytest.mark.parametrize("path", float_paths(RunnerConfig))
def test_runner_settings_take_no_nan(path):
    (issue,) = check_mapping(RunnerConfig, nested(path, math.nan), "runner")
    assert str(issue) == f"runner.{path}: must be a finite number, got nan"


def test_user_and_study_settings_take_no_infinity():
    from llem.study.spec import StudyExecution
    from llem.user_config import UserConfig

    for cls in (UserConfig, StudyExecution):
        paths = float_paths(cls)
        assert paths, cls
        for path in paths:
            (issue,) = check_mapping(cls, nested(path, math.inf))
            assert str(issue) == f"{path}: must be a finite number, got inf"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"passthrough_kwargs": {"a": [1.0, math.nan]}}, "passthrough_kwargs.a[1]: must be a finite number, got nan"),
        ({"passthrough_kwargs": {"a": {"b": -math.inf}}}, "passthrough_kwargs.a.b: must be a finite number, got -inf"),
        (
            {"engine": "vllm", "vllm": {"engine": {"compilation_config": {"x": math.inf}}}},
            "vllm.engine.compilation_config.x: must be a finite number",
        ),
    ],
)
def test_free_form_mappings_take_no_nan_at_any_depth(data, expected):
    assert expected in problems(data)


def test_a_text_field_reads_nan_as_text():
    assert check_path_value("model", math.nan) == []  # `model=nan` on the command line is a name


def test_synthetic_output_len_is_the_recorded_output_length():
    cfg = load_experiment({"dataset": {"source": "synthetic", "input_len": 8, "output_len": 8}, "max_output_tokens": 8})
    assert cfg.max_output_tokens == cfg.decoder.min_new_tokens == 8
    cfg = load_experiment({"dataset": {"source": "synthetic", "input_len": 8, "output_len": 6}})  # default cap
    assert cfg.max_output_tokens == cfg.decoder.min_new_tokens == 6
