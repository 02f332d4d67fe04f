"""The Transformers engine on the tiny built-in model: exact token counts, latency marks, FLOPs."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from llem.config.load import load_experiment
from llem.datasets import Prompt
from llem.engines.transformers.engine import TransformersEngine
from llem.engines.transformers.generation import count_generated, token_times
from llem.errors import EngineUnavailableError

PROMPTS = [
    Prompt(text="Describe the water cycle for a ten year old reader."),
    Prompt(text="List three prime numbers and explain why each one is prime, step by step, with care."),
    Prompt(text="Hello"),
]


def engine_for(model: str, **fields) -> TransformersEngine:
    data = {
        "model": model,
        "dtype": "float32",
        "max_output_tokens": 12,
        "decoder": {"preset": "deterministic"},
        **fields,
    }
    engine = TransformersEngine(load_experiment(data))
    engine.load()
    return engine


def test_count_generated_stops_at_first_eos():
    assert count_generated([5, 6, 2, 0, 0], {2}) == (3, True)
    assert count_generated([5, 6, 7], {2}) == (3, False)
    assert count_generated([2, 2, 2], {2}) == (1, True)


def test_token_times_spread_multi_token_steps():
    assert token_times([(0.1, 11), (0.2, 12), (0.5, 15)], 10) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


def test_output_tokens_exact_when_sequences_stop_at_different_lengths(tiny_model_path):
    batch = {"transformers": {"batch_size": 3}}
    first = engine_for(tiny_model_path, **batch)
    free = first.generate(PROMPTS)
    assert [r.output_tokens for r in free.requests] == [12, 12, 12]
    tok = first.tokenizer()
    rows = [tok(text, add_special_tokens=False)["input_ids"] for text in free.texts]
    # An EOS that row 0 produces early makes the rows stop at different points.
    eos = next(t for t in rows[0][1:6] if t not in rows[0][:1])
    expected = [row.index(eos) + 1 if eos in row else 12 for row in rows]
    assert len(set(expected)) > 1, "the chosen EOS must cut the rows at different lengths"

    stopped = engine_for(tiny_model_path, passthrough_kwargs={"eos_token_id": eos}, **batch)
    run = stopped.generate(PROMPTS)
    assert [r.output_tokens for r in run.requests] == expected
    assert [r.finished_by_eos for r in run.requests] == [n < 12 for n in expected]
    assert all(len(r.itl_s) == r.output_tokens - 1 for r in run.requests)


def test_input_tokens_exclude_padding_and_respect_truncation(tiny_model_path):
    engine = engine_for(tiny_model_path, max_input_tokens=6, transformers={"batch_size": 3})
    run = engine.generate(PROMPTS)
    tok = engine.tokenizer()
    lengths = [min(6, len(tok(p.text)["input_ids"])) for p in PROMPTS]
    assert [r.input_tokens for r in run.requests] == lengths
    assert run.batches[0].padded_input_len == max(lengths)


def test_latency_marks_are_ordered(tiny_model_path):
    run = engine_for(tiny_model_path).generate(PROMPTS[:1])
    record = run.requests[0]
    assert record.ttft_s is not None and record.ttft_s > 0
    assert len(record.itl_s) == 11 and all(gap > 0 for gap in record.itl_s)
    assert record.ttft_s + sum(record.itl_s) <= record.queue_s + run.batches[0].wall_s


def test_latency_counts_from_arrival_so_later_batches_queue(tiny_model_path):
    """Every prompt arrives when generate starts: a later batch's TTFT includes the earlier batches."""
    run = engine_for(tiny_model_path).generate(PROMPTS)  # batch size 1: three batches in a row
    first, second, third = run.requests
    assert first.queue_s < first.ttft_s
    assert second.queue_s >= first.ttft_s + sum(first.itl_s)
    assert third.queue_s >= second.ttft_s + sum(second.itl_s)
    assert second.ttft_s > second.queue_s


@pytest.mark.parametrize(
    "fields", [{"transformers": {"batch_size": 2}}, {"transformers": {"batch_size": 2, "num_beams": 2}}]
)
def test_flops_match_torch_flop_counter(tiny_model_path, fields):
    # Eager attention runs as matmuls the counter sees (CPU SDPA kernels are not counted).
    fields["transformers"]["attn_implementation"] = "eager"
    engine = engine_for(tiny_model_path, **fields)
    with FlopCounterMode(display=False) as counter:
        run = engine.generate(PROMPTS)
    estimate = engine.flops(run)["total"]
    assert estimate == pytest.approx(counter.get_total_flops(), rel=0.05)


def test_sampling_is_seeded(tiny_model_path):
    def sample() -> list[str]:
        torch.manual_seed(7)
        return engine_for(tiny_model_path, decoder={"temperature": 1.0, "top_k": 50}).generate(PROMPTS).texts

    assert sample() == sample()


def test_decoder_options_reach_generate(tiny_model_path):
    engine = engine_for(
        tiny_model_path,
        decoder={"preset": "deterministic", "min_new_tokens": 12},
        transformers={"no_repeat_ngram_size": 2, "num_beams": 2, "length_penalty": 0.5, "early_stopping": True},
    )
    effective = engine.effective_config()
    assert effective["num_beams"] == 2 and effective["no_repeat_ngram_size"] == 2
    assert (
        effective["generate_kwargs"]["length_penalty"] == 0.5 and effective["generate_kwargs"]["min_new_tokens"] == 12
    )
    run = engine.generate(PROMPTS[:1])
    tokens = engine.tokenizer()(run.texts[0], add_special_tokens=False)["input_ids"]
    pairs = list(zip(tokens, tokens[1:]))
    assert len(pairs) == len(set(pairs)), "no_repeat_ngram_size=2 forbids a repeated bigram"


def test_prompt_lookup_decoding_runs(tiny_model_path):
    engine = engine_for(tiny_model_path, transformers={"prompt_lookup_num_tokens": 3})
    run = engine.generate(PROMPTS[:1])
    assert run.requests[0].output_tokens >= 1
    assert engine.effective_config()["prompt_lookup_num_tokens"] == 3


def test_effective_config_fills_every_default(tiny_model_path):
    effective = engine_for(tiny_model_path).effective_config()
    for key in ("batch_size", "attn_implementation", "use_cache", "num_beams", "device_map", "low_cpu_mem_usage"):
        assert effective[key] is not None, key
    assert effective["batch_size"] == 1 and effective["attn_implementation"] == "sdpa"


def test_offloaded_cache_without_cuda_is_a_clear_error(tiny_model_path):
    cfg = load_experiment({"model": tiny_model_path, "transformers": {"cache_implementation": "offloaded_static"}})
    with pytest.raises(EngineUnavailableError, match="needs a CUDA GPU"):
        TransformersEngine(cfg).load()


def test_bitsandbytes_without_cuda_is_a_clear_error(tiny_model_path):
    engine = TransformersEngine(load_experiment({"model": tiny_model_path, "transformers": {"load_in_8bit": True}}))
    with pytest.raises(EngineUnavailableError, match="load_in_8bit"):
        engine.load()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda(tiny_model_path):
    engine = engine_for(tiny_model_path, dtype="bfloat16")
    run = engine.generate(PROMPTS)
    assert engine.effective_config()["device"].startswith("cuda")
    assert sum(r.output_tokens for r in run.requests) > 0
    assert engine.memory()["cuda_peak_allocated_mb"] > 0


@pytest.mark.parametrize(
    "section",
    [
        {"torch_compile": True, "torch_compile_backend": "eager"},
        {"autocast_enabled": True, "autocast_dtype": "bfloat16"},
        {"cache_implementation": "static"},
        {"use_cache": False},
    ],
)
def test_engine_options_run(tiny_model_path, section):
    engine = engine_for(tiny_model_path, transformers=section)
    run = engine.generate(PROMPTS[:2])
    assert [r.output_tokens for r in run.requests] == [12, 12]
    effective = engine.effective_config()
    for key, value in section.items():
        assert effective[key] == value, key
