"""Benchmark: a one-run study through ``llem run`` with the process runner, against a bare loop.

Each round runs ``llem run`` on a one-experiment file in a fresh process (planning, Hydra, the
task app, a spawned worker that loads the model and measures it), then a bare batched
``model.generate`` loop, also in a fresh process of its own (load, one warm-up batch, the timed
loop), on the same model, prompts, batch size and settings: both sides start cold, so the ratio
is the cost of llem's harness and isolation, not of a warmer process. Prints per round and as
medians:

- throughput: the worker's measured output tokens/s over the bare loop's (goal >= 0.97);
- fixed per-job overhead: the study's wall time minus the worker's timed phases (model load,
  prompts, warm-up, baseline, inference, FLOPs...), i.e. process start-up, imports, planning,
  Hydra and file writing (goal < 3 s).

    python benchmarks/process_runner.py [--model smollm2-135m] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from throughput_vs_bare import add_workload_arguments, bare_setup, bare_throughput, experiment_data

from llem.results.codec import read_result
from llem.results.schema import RunResult


def one_run_study(cfg_args: argparse.Namespace, folder: Path) -> tuple[float, RunResult]:
    """Wall seconds of ``llem run`` on a one-experiment file, and the run's result."""
    spec = folder / "experiment.yaml"
    spec.write_text(yaml.safe_dump(experiment_data(cfg_args)))
    out = folder / "out"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "llem.cli", "run", str(spec), "--output", str(out), "--runner", "process", "-q"],
        capture_output=True,
        text=True,
    )
    wall_s = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"llem run failed:\n{proc.stderr}")
    (result_file,) = out.glob("*/*/result.json")
    return wall_s, read_result(result_file)


def bare_in_fresh_process(args: argparse.Namespace) -> float:
    """Output tokens/s of the bare loop run by a new interpreter (this script with ``--bare-once``)."""
    options = [f"--model={args.model}", f"--dtype={args.dtype}", f"--n-prompts={args.n_prompts}"]
    options += [f"--batch-size={args.batch_size}", f"--max-output-tokens={args.max_output_tokens}"]
    out = subprocess.run(
        [sys.executable, __file__, "--bare-once", *options], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


def bare_once(args: argparse.Namespace) -> None:
    """Load the model, run the bare loop once, print its output tokens/s."""
    print(bare_throughput(*bare_setup(args)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_workload_arguments(parser)
    parser.add_argument("--bare-once", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_once:
        bare_once(args)
        return

    ratios, overheads = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            folder = Path(tmp) / f"round{i}"
            folder.mkdir()
            wall_s, result = one_run_study(args, folder)
            timed_s = result.phases_s.total_s()
            bare_tps = bare_in_fresh_process(args)
            llem_tps = result.throughput.output_tokens_per_s
            ratios.append(llem_tps / bare_tps)
            overheads.append(wall_s - timed_s)
            print(
                f"round {i + 1}: worker {llem_tps:8.1f} tok/s   bare {bare_tps:8.1f} tok/s   "
                f"ratio {ratios[-1]:.3f}   study {wall_s:5.2f} s - timed phases {timed_s:5.2f} s "
                f"= overhead {overheads[-1]:.2f} s"
            )
    print(
        f"median over {args.rounds} rounds (model {args.model}, {args.dtype}, batch {args.batch_size}, "
        f"{args.n_prompts} prompts, {args.max_output_tokens} new tokens, greedy): "
        f"throughput worker/bare {statistics.median(ratios):.3f} (goal >= 0.97), "
        f"fixed per-job overhead {statistics.median(overheads):.2f} s (goal < 3 s)"
    )


if __name__ == "__main__":
    main()
