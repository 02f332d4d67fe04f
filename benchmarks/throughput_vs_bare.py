"""Benchmark: llem's measured output tokens/s against a bare ``model.generate`` loop.

Both sides use the same model, prompts, batch size, greedy decoding, output cap and warm-up, in
the same process, alternated ``--rounds`` times so that machine noise hits both alike. llem's
figure is the one it reports in result.json; the bare loop times the same batches with
``time.perf_counter`` and counts output tokens the same way (up to the first EOS, no padding).
Prints each round and the median ratio llem / bare (goal: >= 0.97).

    python benchmarks/throughput_vs_bare.py [--model smollm2-135m] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from llem.config.load import load_experiment
from llem.datasets import load_prompts
from llem.engines.transformers.generation import count_generated, eos_token_ids
from llem.measure import measure
from llem.models import resolve_model


def experiment_data(args: argparse.Namespace) -> dict:
    """The benchmarked experiment as plain data (greedy, one warm-up batch, no energy sampler)."""
    return {
        "model": args.model,
        "dtype": args.dtype,
        "max_output_tokens": args.max_output_tokens,
        "dataset": {"n_prompts": args.n_prompts},
        "decoder": {"preset": "deterministic"},
        "warmup": {"n_warmup": args.batch_size, "thermal_floor_seconds": 0.0},
        "transformers": {"batch_size": args.batch_size},
        "energy_sampler": None,
    }


def experiment(args: argparse.Namespace):
    return load_experiment(experiment_data(args))


def bare_throughput(cfg, model, tokenizer, texts: list[str]) -> float:
    """Output tokens/s of a plain batched generate loop over ``texts``."""
    import torch

    eos = eos_token_ids(model.generation_config, tokenizer)
    batch = cfg.transformers.batch_size

    def run(chunks: list[list[str]]) -> int:
        produced = 0
        for chunk in chunks:
            enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=cfg.max_input_tokens)
            with torch.inference_mode():
                out = model.generate(
                    **enc,
                    do_sample=False,
                    temperature=None,
                    top_k=None,
                    top_p=None,
                    max_new_tokens=cfg.max_output_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = out[:, enc["input_ids"].shape[1] :].tolist()
            produced += sum(count_generated(row, eos)[0] for row in new)
        return produced

    chunks = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    run(chunks[:1])  # the same warm-up as llem's: one batch
    start = time.perf_counter()
    produced = run(chunks)
    return produced / (time.perf_counter() - start)


def bare_setup(args: argparse.Namespace):
    """``(cfg, model, tokenizer, prompt texts)`` for the bare loop, loaded the plain transformers way."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = experiment(args)
    path = resolve_model(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, cfg.dtype.value)).eval()
    texts = [p.text for p in load_prompts(cfg.dataset, random_seed=cfg.random_seed, tokenizer=tokenizer)]
    return cfg, model, tokenizer, texts


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both throughput benchmarks share (model, dtype, rounds, prompts, batch, tokens)."""
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n-prompts", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-output-tokens", type=int, default=32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_arguments(parser)
    args = parser.parse_args()
    cfg, model, tokenizer, texts = bare_setup(args)

    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            llem_tps = measure(cfg, Path(tmp) / f"round{i}").throughput.output_tokens_per_s
            bare_tps = bare_throughput(cfg, model, tokenizer, texts)
            ratios.append(llem_tps / bare_tps)
            print(f"round {i + 1}: llem {llem_tps:8.1f} tok/s   bare {bare_tps:8.1f} tok/s   ratio {ratios[-1]:.3f}")
    print(
        f"median llem/bare output tokens/s over {args.rounds} rounds: {statistics.median(ratios):.3f} "
        f"(model {args.model}, {args.dtype}, batch {args.batch_size}, {args.n_prompts} prompts, "
        f"{args.max_output_tokens} new tokens, greedy; goal >= 0.97)"
    )


if __name__ == "__main__":
    main()
