"""Contract with TensorRT-LLM 1.2.1: every argument llem passes exists in the recorded API
(tests/facts/tensorrt_llm_1_2_1.json, read from the 1.2.1 sources) with a compatible type, and llem's
table of what TensorRT-LLM accepts matches its lists. Where TensorRT-LLM is installed, the recorded API
is checked against the installed one too. A renamed or dropped argument fails here, not in a user's study."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from llem.config.load import load_experiment
from llem.config.schema import DType, TensorRTCapacityPolicy, TensorRTChunkingPolicy
from llem.engines.tensorrt import args, capabilities

FACTS = json.loads((Path(__file__).parent / "facts" / "tensorrt_llm_1_2_1.json").read_text())

# Every field of llem's tensorrt section set to a valid value, for each LLM class.
EVERY_FIELD = {
    "max_batch_size": 64,
    "max_num_tokens": 4096,
    "max_seq_len": 2048,
    "max_input_len": 1024,
    "max_beam_width": 4,
    "tensor_parallel_size": 1,
    "pipeline_parallel_size": 1,
    "dtype": "float16",
    "enable_chunked_prefill": True,
    "kv_cache": {
        "enable_block_reuse": True,
        "free_gpu_memory_fraction": 0.8,
        "max_tokens": 8192,
        "tokens_per_block": 64,
    },
    "scheduler": {
        "capacity_scheduler_policy": "GUARANTEED_NO_EVICT",
        "context_chunking_policy": "FIRST_COME_FIRST_SERVED",
    },
    "sampling": {
        "n": 2,
        "best_of": 4,
        "use_beam_search": True,
        "length_penalty": 0.8,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.1,
        "ignore_eos": False,
        "end_id": 2,
        "pad_id": 0,
    },
}
BACKEND_FIELDS = {
    "trt": {"engine": "trt", "fast_build": True, "quant": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}},
    "pytorch": {"engine": "pytorch", "kv_cache": {**EVERY_FIELD["kv_cache"], "dtype": "fp8"}},
}
ARGS_CLASS = {"trt": "TrtLlmArgs", "pytorch": "TorchLlmArgs"}
TYPES = {"int": int, "float": (int, float), "bool": bool, "str": str}


def recorded(section: str) -> dict[str, dict]:
    return {name: spec for name, spec in FACTS[section].items() if isinstance(spec, dict)}


def fits(value: object, recorded_type: str) -> bool:
    """Whether ``value`` fits a recorded type such as ``int | None`` or ``str | Path`` (other types: any)."""
    alternatives = [part.strip() for part in recorded_type.split("|")]
    if value is None:
        return "None" in alternatives
    types = [a for a in alternatives if a != "None"]
    known = [TYPES[a] for a in types if a in TYPES]
    if len(known) < len(types):  # a class of TensorRT-LLM's own among the alternatives
        return True
    if isinstance(value, bool) and bool not in known:
        return False
    return isinstance(value, tuple(known))


def check_against(produced: dict, fields: dict[str, dict], where: str) -> None:
    for name, value in produced.items():
        assert name in fields, f"llem passes {name!r}, which {where} of TensorRT-LLM {FACTS['version']} does not have"
        if not isinstance(value, dict):
            assert fits(value, fields[name]["type"]), f"{where}.{name}: {value!r} does not fit {fields[name]['type']}"


def experiment(backend: str, sampling: dict | None = None, **decoder):
    section = {**EVERY_FIELD, **BACKEND_FIELDS[backend], "sampling": sampling or EVERY_FIELD["sampling"]}
    return load_experiment(
        {"engine": "tensorrt", "dtype": "float16", "decoder": {"do_sample": False, **decoder}, "tensorrt": section}
    )


def test_the_tables_follow_the_recorded_version():
    assert capabilities.TENSORRT_LLM_VERSION == FACTS["version"] == "1.2.1"
    assert {t.backend.value: t.llm_class for t in capabilities.BACKENDS.values()} == {
        backend: spec["import"] for backend, spec in FACTS["llm_classes"].items() if isinstance(spec, dict)
    }


@pytest.mark.parametrize("backend", ["trt", "pytorch"])
def test_every_llm_argument_exists_with_a_compatible_type(backend):
    produced = args.llm_kwargs(experiment(backend), "/models/m", DType.float16)
    fields = {**recorded("BaseLlmArgs"), **recorded(ARGS_CLASS[backend])}
    check_against(produced, fields, ARGS_CLASS[backend])
    check_against(produced["kv_cache_config"], recorded("KvCacheConfig"), "KvCacheConfig")
    check_against(produced["scheduler_config"], recorded("SchedulerConfig"), "SchedulerConfig")
    assert produced["scheduler_config"]["capacity_scheduler_policy"] in FACTS["CapacitySchedulerPolicy"]
    assert produced["scheduler_config"]["context_chunking_policy"] in FACTS["ContextChunkingPolicy"]
    if backend == "trt":
        check_against(produced["quant_config"], recorded("QuantConfig"), "QuantConfig")
        assert set(produced["quant_config"].values()) <= set(FACTS["QuantAlgo"])
    else:
        assert "quant_config" not in produced and "fast_build" not in produced  # TrtLlmArgs only


@pytest.mark.parametrize("decoder", [{}, {"do_sample": True, "temperature": 0.8, "min_p": 0.05}])
def test_every_sampling_argument_exists_with_a_compatible_type(decoder):
    beam = EVERY_FIELD["sampling"]
    sampling = {k: v for k, v in beam.items() if k not in ("use_beam_search", "length_penalty")} if decoder else beam
    cfg = experiment("pytorch", sampling, **decoder)
    check_against(args.sampling_kwargs(cfg, 16, 100), recorded("SamplingParams"), "SamplingParams")


def test_the_check_refuses_an_argument_the_api_does_not_have():
    with pytest.raises(AssertionError, match="llem passes 'engine_path'"):
        check_against({"engine_path": "/e"}, recorded("TrtLlmArgs"), "TrtLlmArgs")
    with pytest.raises(AssertionError, match="does not fit"):
        check_against({"max_batch_size": "8"}, recorded("BaseLlmArgs"), "BaseLlmArgs")


def test_keys_llem_reserves_are_real_arguments():
    names = set(recorded("BaseLlmArgs")) | set(recorded("TrtLlmArgs")) | set(recorded("SamplingParams"))
    assert names >= args.LLEM_SET_KEYS


def test_capability_table_matches_the_recorded_lists():
    assert set(FACTS["QuantAlgo"]) - {"INT8"} == capabilities.WEIGHT_QUANT_ALGOS  # QUANT_ALGO_LIST
    assert set(FACTS["KV_CACHE_QUANT_ALGO_LIST"]) == capabilities.KV_CACHE_QUANT_ALGOS
    assert [p.value for p in TensorRTCapacityPolicy] == FACTS["CapacitySchedulerPolicy"]
    assert [p.value for p in TensorRTChunkingPolicy] == FACTS["ContextChunkingPolicy"]
    assert capabilities.PYTORCH.quant_algos == frozenset()  # TorchLlmArgs.quant_config is no argument
    assert "quant_config" not in recorded("TorchLlmArgs") and "fast_build" not in recorded("TorchLlmArgs")
    assert capabilities.TRT.kv_cache_dtypes == {"auto"}


def test_documented_defaults_are_the_recorded_ones():
    base = recorded("BaseLlmArgs")
    assert (base["max_batch_size"]["default"], base["max_seq_len"]["default"]) == (2048, None)
    assert (base["max_num_tokens"]["default"], base["max_input_len"]["default"]) == (8192, 1024)
    assert recorded("BuildConfig")["opt_batch_size"]["default"] == 8
    assert recorded("KvCacheConfig")["enable_block_reuse"]["default"] is True  # llem turns it off
    assert recorded("SamplingParams")["max_tokens"]["default"] == 32  # llem always sets max_tokens


def test_the_recorded_api_is_the_installed_one():
    tensorrt_llm = pytest.importorskip("tensorrt_llm", reason="TensorRT-LLM is not installed (it needs an NVIDIA GPU)")
    from tensorrt_llm import SamplingParams, llmapi

    assert tensorrt_llm.__version__ == FACTS["version"]
    for backend, args_class in ARGS_CLASS.items():
        real = set(getattr(llmapi, args_class).model_fields)
        assert set(recorded("BaseLlmArgs")) | set(recorded(args_class)) <= real, backend
    assert set(recorded("KvCacheConfig")) <= set(llmapi.KvCacheConfig.model_fields)
    assert set(recorded("SchedulerConfig")) <= set(llmapi.SchedulerConfig.model_fields)
    assert set(recorded("SamplingParams")) <= {f.name for f in dataclasses.fields(SamplingParams)}
    assert [m.value for m in llmapi.QuantAlgo] == FACTS["QuantAlgo"]
