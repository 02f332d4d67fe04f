"""llem's tensorrt section -> TensorRT-LLM 1.2's arguments (pure mapping), and the capability table's
rules (tests/test_tensorrt_contract.py checks the names against the recorded 1.2.1 API)."""

from __future__ import annotations

import pytest

from llem.config.load import load_experiment
from llem.config.schema import DType, TensorRTBackend
from llem.engines.tensorrt import args, capabilities, runtime
from llem.errors import ConfigError


def trt(**fields):
    return load_experiment({"engine": "tensorrt", "dtype": "float16", **fields})


def problems(**fields) -> str:
    with pytest.raises(ConfigError) as err:
        trt(**fields)
    return str(err.value)


def test_measurement_defaults_and_nothing_else_unset():
    kwargs = args.llm_kwargs(trt(), "/m", DType.float16)
    assert kwargs == {
        "model": "/m",
        "tokenizer": "/m",
        "dtype": "float16",
        "kv_cache_config": {"enable_block_reuse": False},
    }


def test_every_set_field_is_passed_under_the_api_name():
    cfg = trt(
        tensorrt={
            "engine": "trt",
            "max_batch_size": 16,
            "max_num_tokens": 4096,
            "max_seq_len": 1024,
            "max_input_len": 512,
            "tensor_parallel_size": 2,
            "pipeline_parallel_size": 2,
            "enable_chunked_prefill": True,
            "fast_build": True,
            "quant": {"quant_algo": "W8A16", "kv_cache_quant_algo": "INT8"},
            "kv_cache": {"enable_block_reuse": True, "free_gpu_memory_fraction": 0.5, "tokens_per_block": 64},
            "scheduler": {"capacity_scheduler_policy": "MAX_UTILIZATION", "context_chunking_policy": "EQUAL_PROGRESS"},
        }
    )
    kwargs = args.llm_kwargs(cfg, "/m", DType.float16)
    assert kwargs["quant_config"] == {"quant_algo": "W8A16", "kv_cache_quant_algo": "INT8"}
    assert kwargs["kv_cache_config"] == {
        "enable_block_reuse": True,
        "free_gpu_memory_fraction": 0.5,
        "tokens_per_block": 64,
    }
    assert kwargs["scheduler_config"] == {
        "capacity_scheduler_policy": "MAX_UTILIZATION",
        "context_chunking_policy": "EQUAL_PROGRESS",
    }
    assert (kwargs["max_batch_size"], kwargs["max_seq_len"], kwargs["fast_build"]) == (16, 1024, True)
    assert capabilities.tensor_pipeline_gpus(cfg.tensorrt) == 4


@pytest.mark.parametrize(
    ("section", "backend"),
    [
        ({}, TensorRTBackend.pytorch),
        ({"quant": {"quant_algo": "FP8"}}, TensorRTBackend.trt),  # quantising happens while building
        ({"fast_build": False}, TensorRTBackend.trt),
        ({"engine": "pytorch", "kv_cache": {"dtype": "fp8"}}, TensorRTBackend.pytorch),
    ],
)
def test_the_llm_class_follows_the_build_time_fields(section, backend):
    table = capabilities.table(trt(tensorrt=section).tensorrt)
    assert table.backend is backend
    assert table.llm_class == {"pytorch": "tensorrt_llm.LLM", "trt": "tensorrt_llm._tensorrt_engine.LLM"}[backend.value]


def test_beam_search_sets_the_engine_beam_width():
    cfg = trt(decoder={"do_sample": False}, tensorrt={"sampling": {"use_beam_search": True, "n": 2, "best_of": 4}})
    assert args.llm_kwargs(cfg, "/m", DType.float16)["max_beam_width"] == 4
    sampling = args.sampling_kwargs(cfg, None, 100)
    assert (sampling["use_beam_search"], sampling["n"], sampling["best_of"]) == (True, 2, 4)
    assert "top_k" not in sampling and "temperature" not in sampling


def test_greedy_is_top_k_one_and_sampling_passes_the_decoder():
    greedy = args.sampling_kwargs(trt(decoder={"preset": "deterministic"}), None, 100)
    assert greedy["top_k"] == 1 and "temperature" not in greedy and "top_p" not in greedy
    sampled = args.sampling_kwargs(trt(decoder={"temperature": 0.7, "top_p": 0.9, "top_k": 0, "min_p": 0.1}), None, 9)
    assert (sampled["temperature"], sampled["top_p"], sampled["min_p"]) == (0.7, 0.9, 0.1)
    assert "top_k" not in sampled and sampled["seed"] == 42


def test_forced_length_and_the_room_cap():
    cfg = trt(max_output_tokens=None, tensorrt={"sampling": {"ignore_eos": True, "end_id": 2}})
    assert args.sampling_kwargs(cfg, None, 300)["max_tokens"] == 300  # never TensorRT-LLM's 32
    forced = args.sampling_kwargs(cfg, 12, 300)
    assert (forced["max_tokens"], forced["min_tokens"], forced["ignore_eos"], forced["end_id"]) == (12, 12, True, 2)


def test_build_options_leave_out_the_runtime_only_settings():
    kwargs = args.llm_kwargs(trt(tensorrt={"engine": "trt", "max_batch_size": 8}), "/m", DType.float16)
    options = args.build_options(kwargs)
    assert options == {"dtype": "float16", "max_batch_size": 8}


def test_cache_key_changes_with_each_part(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    base = runtime.cache_key(str(model), {"dtype": "float16"}, "1.2.1", "H100")
    assert base == runtime.cache_key(str(model), {"dtype": "float16"}, "1.2.1", "H100")
    others = {
        runtime.cache_key(str(model), {"dtype": "bfloat16"}, "1.2.1", "H100"),
        runtime.cache_key(str(model), {"dtype": "float16"}, "1.3.0", "H100"),
        runtime.cache_key(str(model), {"dtype": "float16"}, "1.2.1", "A100"),
        runtime.cache_key("org/other", {"dtype": "float16"}, "1.2.1", "H100"),
    }
    assert base not in others and len(others) == 4
    (model / "config.json").write_text('{"changed": 1}')
    assert runtime.cache_key(str(model), {"dtype": "float16"}, "1.2.1", "H100") != base


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tensorrt": {"engine": "trt", "quant": {"quant_algo": "INT8"}}}, "int8 weights are W8A16"),
        ({"tensorrt": {"engine": "pytorch", "quant": {"quant_algo": "FP8"}}}, "reads quantisation from the checkpoint"),
        ({"tensorrt": {"engine": "trt", "quant": {"kv_cache_quant_algo": "W8A16"}}}, "FP8, INT8, NVFP4"),
        ({"tensorrt": {"engine": "trt", "kv_cache": {"dtype": "fp8"}}}, "set that instead"),
        ({"tensorrt": {"kv_cache": {"dtype": "int4"}}}, "tensorrt.kv_cache.dtype: one of auto, fp8"),
        ({"tensorrt": {"engine": "pytorch", "fast_build": True}}, "only the TensorRT path builds an engine"),
        ({"tensorrt": {"scheduler": {"context_chunking_policy": "EQUAL_PROGRESS"}}}, "enable_chunked_prefill=true"),
        ({"tensorrt": {"sampling": {"n": 2, "best_of": 1}}}, "best_of: 1 is below tensorrt.sampling.n (2)"),
        ({"decoder": {"do_sample": False}, "tensorrt": {"sampling": {"n": 2}}}, "greedy decoding returns one"),
        ({"tensorrt": {"sampling": {"length_penalty": 0.5}}}, "only applies to beam search"),
        ({"tensorrt": {"sampling": {"use_beam_search": True}}}, "beam search with sampling"),
        (
            {
                "decoder": {"do_sample": False},
                "tensorrt": {"max_beam_width": 2, "sampling": {"use_beam_search": True, "n": 3}},
            },
            "tensorrt.max_beam_width: 2 is below the beam width asked for (3)",
        ),
        ({"tensorrt": {"max_input_len": 512, "max_seq_len": 512}}, "must be below tensorrt.max_seq_len"),
        ({"tensorrt": {"kv_cache": {"free_gpu_memory_fraction": 1.5}}}, "between 0.0 and 1.0"),
        ({"tensorrt": {"dtype": "bfloat16"}}, "tensorrt.dtype: differs from dtype"),
    ],
)
def test_what_tensorrt_llm_does_not_accept_is_refused_before_load(fields, expected):
    assert expected in problems(**fields)


def test_the_api_names_of_the_sub_sections_are_read_as_llem_names():
    cfg = trt(tensorrt={"engine": "trt", "kv_cache_config": {"max_tokens": 4096}, "scheduler_config": {}})
    assert cfg.tensorrt.kv_cache.max_tokens == 4096


def test_device_issues_name_the_gpu_limit():
    cfg = trt(tensorrt={"tensor_parallel_size": 2, "quant": {"quant_algo": "FP8"}})
    issues = capabilities.device_issues(cfg, DType.bfloat16, (7, 5), 1)
    assert issues[0].startswith("tensorrt.tensor_parallel_size x pipeline_parallel_size: 2 GPUs asked for, 1 visible")
    assert any(i.startswith("bfloat16: needs a GPU of compute capability 8.0") for i in issues)
    assert any(i.startswith("FP8: needs a GPU of compute capability 8.9") for i in issues)
    assert capabilities.device_issues(cfg, DType.bfloat16, (9, 0), 2) == []
