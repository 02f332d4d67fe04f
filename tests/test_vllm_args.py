"""llem's config -> vLLM's arguments (pure mapping; tests/test_vllm_contract.py checks the names against vLLM)."""

from __future__ import annotations

import pytest

from llem.config.load import load_experiment
from llem.config.schema import DType
from llem.engines.vllm import args


def vllm_experiment(**fields):
    return load_experiment({"engine": "vllm", **fields})


def test_measurement_defaults_on_a_cpu(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    kwargs = args.engine_kwargs(vllm_experiment(), "/m", DType.float32, "cpu")
    assert kwargs["enable_prefix_caching"] is False and kwargs["disable_log_stats"] is False
    assert kwargs["enforce_eager"] is True and kwargs["kv_cache_memory_bytes"] == 2**30
    assert kwargs["dtype"] == "float32" and kwargs["seed"] == 42


@pytest.mark.parametrize(
    ("engine", "env"),
    [({"kv_cache_memory_bytes": 2**31}, ""), ({"gpu_memory_utilization": 0.5}, ""), ({}, "4")],
)
def test_a_kv_cache_the_user_sized_is_kept(monkeypatch, engine, env):
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", env)
    kwargs = args.engine_kwargs(vllm_experiment(vllm={"engine": engine}), "/m", DType.float32, "cpu")
    assert kwargs.get("kv_cache_memory_bytes") == engine.get("kv_cache_memory_bytes")


def test_cuda_keeps_vllms_own_defaults():
    kwargs = args.engine_kwargs(vllm_experiment(), "/m", DType.bfloat16, "cuda")
    assert kwargs["enforce_eager"] is False and "kv_cache_memory_bytes" not in kwargs


def test_no_output_cap_means_up_to_the_context_not_vllms_16():
    assert args.sampling_kwargs(vllm_experiment(max_output_tokens=None), None)["max_tokens"] is None


def test_forced_length_sets_min_and_max_tokens_alike():
    kwargs = args.sampling_kwargs(vllm_experiment(decoder={"preset": "deterministic"}), 7)
    assert (kwargs["min_tokens"], kwargs["max_tokens"], kwargs["temperature"]) == (7, 7, 0.0)
    assert "top_p" not in kwargs  # greedy: no sampling filters


def test_beam_search_cap_falls_back_to_the_room_left_in_the_context():
    cfg = vllm_experiment(max_output_tokens=None, decoder={"do_sample": False}, vllm={"beam_search": {"beam_width": 3}})
    assert args.beam_search_kwargs(cfg, None, 500) == {"beam_width": 3, "max_tokens": 500}
    assert args.beam_search_kwargs(cfg, 9, 500) == {"beam_width": 3, "max_tokens": 9, "ignore_eos": True}
