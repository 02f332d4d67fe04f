"""Benchmark: llem's vLLM engine against a bare ``LLM.generate`` on the same engine, and against the
Transformers engine on the same workload.

One ``vllm.LLM`` is loaded (by llem's engine) and both sides use it: llem's ``generate`` (its own
step loop with per-token timestamps) and vLLM's plain ``LLM.generate`` over the same token ids and
the same sampling settings (greedy, ``min_tokens = max_tokens``, so both produce exactly
``n_prompts x output_len`` tokens), alternated ``--rounds`` times so machine noise hits both alike.
Prints each round and the median ratio llem / bare (goal: >= 0.98), then the Transformers engine's
output tokens/s on the same prompts (all prompts in one batch) for comparison.

    python benchmarks/vllm_vs_bare.py [--model smollm2-135m] [--rounds 5] [--n-prompts 16] [--input-len 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

from throughput_vs_bare import add_workload_arguments

from llem.config.load import load_experiment
from llem.datasets import load_prompts
from llem.engines.prompts import encode_prompts
from llem.engines.transformers.engine import TransformersEngine
from llem.engines.vllm import args as vllm_args
from llem.engines.vllm.engine import VllmEngine
from llem.results.record import summarize_run


def experiment(args: argparse.Namespace, engine: str):
    """Synthetic prompts of an exact length, each forced to exactly ``--output-len`` tokens, greedy."""
    return load_experiment(
        {
            "model": args.model,
            "engine": engine,
            "dtype": args.dtype,
            "dataset": {
                "source": "synthetic",
                "n_prompts": args.n_prompts,
                "input_len": args.input_len,
                "output_len": args.max_output_tokens,
            },
            "decoder": {"preset": "deterministic"},
            "transformers": {"batch_size": args.n_prompts} if engine == "transformers" else None,
            "energy_sampler": None,
        }
    )


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def transformers_throughput(args: argparse.Namespace) -> float:
    """Median output tokens/s of the Transformers engine on the same prompts, all in one batch."""
    cfg = experiment(args, "transformers")
    hf = TransformersEngine(cfg)
    hf.load()
    prompts = load_prompts(cfg.dataset, random_seed=cfg.random_seed, tokenizer=hf.tokenizer())
    hf.generate(prompts)  # the same warm-up as vLLM's
    figures = []
    for _ in range(max(1, args.rounds // 2)):
        seconds, run = timed(lambda: hf.generate(prompts))
        figures.append(summarize_run(run, seconds).throughput.output_tokens_per_s)
    hf.close()
    return statistics.median(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_arguments(parser)  # --max-output-tokens is the forced output length; --batch-size is unused
    parser.add_argument("--input-len", type=int, default=64)
    args = parser.parse_args()
    # Transformers first: once vLLM's CPU build has loaded, it pins this process's threads for itself.
    hf_tps = transformers_throughput(args)
    from vllm import SamplingParams, TokensPrompt

    cfg = experiment(args, "vllm")
    engine = VllmEngine(cfg)
    engine.load()
    prompts = load_prompts(cfg.dataset, random_seed=cfg.random_seed, tokenizer=engine.tokenizer())
    ids = encode_prompts(engine.tokenizer(), prompts, cfg.max_input_tokens, chat_template=False)
    bare_prompts = [TokensPrompt(prompt_token_ids=p) for p in ids]
    params = SamplingParams(**vllm_args.sampling_kwargs(cfg, args.max_output_tokens))
    llm = engine._llm  # the very engine llem measures

    engine.generate(prompts)  # warm-up, both sides share it
    ratios, llem_figures = [], []
    for i in range(args.rounds):
        seconds, run = timed(lambda: engine.generate(prompts))
        llem_tps = summarize_run(run, seconds).throughput.output_tokens_per_s
        seconds, outputs = timed(lambda: llm.generate(bare_prompts, params, use_tqdm=False))
        bare_tps = sum(len(c.token_ids) for o in outputs for c in o.outputs) / seconds
        ratios.append(llem_tps / bare_tps)
        llem_figures.append(llem_tps)
        print(f"round {i + 1}: llem {llem_tps:8.1f} tok/s   bare {bare_tps:8.1f} tok/s   ratio {ratios[-1]:.3f}")
    engine.close()
    workload = (
        f"model {args.model}, {cfg.dtype.value if cfg.dtype else 'default dtype'}, {args.n_prompts} prompts x "
        f"{args.input_len} tokens in, {args.max_output_tokens} out, greedy"
    )
    print(
        f"median llem/bare output tokens/s over {args.rounds} rounds: {statistics.median(ratios):.3f} ({workload}; "
        "goal >= 0.98)"
    )

    vllm_tps = statistics.median(llem_figures)
    print(
        f"vLLM {vllm_tps:.1f} tok/s against Transformers {hf_tps:.1f} tok/s (one batch of {args.n_prompts}): "
        f"{vllm_tps / hf_tps:.2f}x ({workload})"
    )


if __name__ == "__main__":
    main()
