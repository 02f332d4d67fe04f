"""FLOPs of each generation mode against ``torch.utils.flop_counter.FlopCounterMode`` on llem-tiny.

Eager attention runs as matmuls the counter sees (CPU SDPA kernels are not counted). Where llem's
count is exact (every mode but prompt-lookup decoding) it must equal the counter's to the FLOP;
prompt lookup must bracket it and say that it is an estimate.
"""

from __future__ import annotations

import pytest
from torch.utils.flop_counter import FlopCounterMode

from llem import flops
from llem.config.load import load_experiment
from llem.datasets import Prompt
from llem.engines.base import BatchRecord
from llem.engines.transformers.engine import TransformersEngine

# Prompts of different lengths (left padding in a batch), one with repeats for prompt lookup to find.
PROMPTS = [
    Prompt(text="The water cycle: water falls as rain, the water flows to the sea, the water rises as vapour."),
    Prompt(text="List three prime numbers and explain why each one is prime, step by step."),
    Prompt(text="Hello"),
]
# Counts that are exact must match the counter within this relative tolerance (rounding only).
EXACT_REL = 1e-9


def engine_for(model: str, max_output_tokens: int = 12, **transformers) -> TransformersEngine:
    engine = TransformersEngine(
        load_experiment(
            {
                "model": model,
                "dtype": "float32",
                "max_output_tokens": max_output_tokens,
                "decoder": {"preset": "deterministic"},
                "transformers": {"attn_implementation": "eager", **transformers},
            }
        )
    )
    engine.load()
    return engine


def counted(engine: TransformersEngine, prompts: list[Prompt] = PROMPTS) -> tuple[int, dict]:
    """FlopCounterMode's total for generating ``prompts``, and llem's FLOPs block of that run."""
    with FlopCounterMode(display=False) as counter:
        run = engine.generate(prompts)
    return counter.get_total_flops(), engine.flops(run)


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="default-cache"),
        pytest.param({"batch_size": 3}, id="batch-with-padding"),
        pytest.param({"use_cache": False}, id="no-cache"),
        pytest.param({"use_cache": False, "batch_size": 2}, id="no-cache-batch"),
        pytest.param({"cache_implementation": "static"}, id="static-cache"),
        pytest.param({"cache_implementation": "static", "batch_size": 2}, id="static-cache-batch"),
        pytest.param({"num_beams": 3, "batch_size": 2}, id="beam-search"),
    ],
)
def test_exact_modes_match_the_flop_counter(tiny_model_path, settings):
    truth, block = counted(engine_for(tiny_model_path, **settings))
    assert block["total"] == pytest.approx(truth, rel=EXACT_REL)
    assert block["total_lower"] == block["total_upper"] == block["total"]
    assert block["confidence"] == "high"
    assert block["per_output_token"] == block["total"] / (12 * len(PROMPTS))
    static = "cache_implementation" in settings
    assert static == any(note.startswith("static KV cache of") for note in block["notes"])


def test_static_cache_keeps_the_size_of_a_longer_earlier_call(tiny_model_path):
    """transformers reuses the largest static cache of earlier calls (the warm-up's, say): keys span all of it."""
    engine = engine_for(tiny_model_path, max_output_tokens=20, cache_implementation="static")
    engine.generate(PROMPTS[:1])  # sizes the cache for the longest prompt + 20 tokens
    engine.cfg.max_output_tokens = 4
    truth, block = counted(engine, PROMPTS[2:])
    assert block["total"] == pytest.approx(truth, rel=EXACT_REL)


def test_prompt_lookup_is_a_labelled_estimate_that_brackets_the_counter(tiny_model_path):
    engine = engine_for(tiny_model_path, max_output_tokens=16, prompt_lookup_num_tokens=4)
    truth, block = counted(engine)
    assert block["total_lower"] <= truth <= block["total_upper"]
    assert block["total_lower"] < block["total_upper"]
    assert block["total"] == (block["total_lower"] + block["total_upper"]) // 2
    assert block["confidence"] == "low"
    assert "prompt-lookup" in block["method"]
    assert any(note.startswith("estimate:") for note in block["notes"])


def test_generate_arguments_set_the_mode():
    mode = flops.GenerationMode.from_generate_kwargs(
        {"num_beams": 1, "num_return_sequences": 3, "use_cache": False, "prefill_chunk_size": 64}
    )
    assert mode.rows_per_prompt == 3 and not mode.use_cache and not mode.speculative
    assert any("chunked prefill" in c for c in mode.caveats)
    assert flops.GenerationMode.from_generate_kwargs({"assistant_early_exit": 4}).speculative


SHAPE = flops.DecoderShape(body_linear_params=1000, head_params=500, n_layers=2, attention_width=8)


def test_caveats_lower_the_confidence_and_speculative_decoding_is_low():
    batch = [BatchRecord(1, 10, 5, 0.0)]
    medium = flops.estimate(SHAPE, batch, 5, flops.GenerationMode(caveats=("prefix caching: skipped",)))
    assert medium["confidence"] == "medium" and "prefix caching: skipped" in medium["notes"]
    low = flops.estimate(SHAPE, batch, 5, flops.GenerationMode(speculative=True))
    assert low["confidence"] == "low" and any("lower bound" in n for n in low["notes"])
    assert low["total"] == low["total_lower"] and low["total_upper"] is None
    sliding = flops.DecoderShape(1000, 500, 2, 8, sliding_window=4)
    assert flops.estimate(sliding, batch, 5)["confidence"] == "medium"


def test_no_cache_steps_rerun_the_whole_sequence():
    """vLLM's beam search (one new request per step, no prefix cache) is counted this way too."""
    prompt, steps, beams = 10, 4, 3
    block = flops.estimate(
        SHAPE, [BatchRecord(1, prompt, steps, 0.0)], steps, flops.GenerationMode(rows_per_prompt=beams, use_cache=False)
    )
    by_hand = sum(beams * (2 * 1000 * n + 2 * 500 + 4 * 2 * 8 * n * n) for n in range(prompt, prompt + steps))
    assert block["total"] == by_hand and block["confidence"] == "high"
