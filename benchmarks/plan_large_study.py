"""Benchmark: planning a 10,000-experiment study (expand, validate every experiment, order, encode)
and printing it as ``llem plan`` does (plain console, summarised).

Validation runs the schema and cross-field checks on plain data, without a Hydra composition per
experiment. Goal: planning under 2 s on a quiet 2-core machine. The load average is printed, and the
CPU seconds planning used beside the wall seconds: on a busy machine the wall time grows with the
load, the CPU time much less.

    python benchmarks/plan_large_study.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time

from rich.console import Console

from llem.study.plan import plan_study
from llem.study.report import print_plan
from llem.study.spec import parse_study

STUDY = {
    "name": "plan-benchmark",
    "model": "llem-tiny",
    "sweep": {
        "dtype": ["float16", "bfloat16"],
        "transformers.batch_size": list(range(1, 51)),
        "dataset.n_prompts": list(range(1, 101)),
    },
    "study_execution": {"n_cycles": 3, "experiment_order": "shuffle"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    times, cpu_times, print_times = [], [], []
    for _ in range(args.repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        plan = plan_study(parse_study(STUDY))
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        start = time.perf_counter()
        print_plan(plan, Console(file=io.StringIO(), width=120, color_system=None))
        print_times.append(time.perf_counter() - start)
    print(
        f"planned {len(plan.experiments)} experiments / {len(plan.runs)} runs: "
        f"median {statistics.median(times):.2f} s over {args.repeat} repeats "
        f"(min {min(times):.2f} s, max {max(times):.2f} s; goal < 2 s), CPU {statistics.median(cpu_times):.2f} s; "
        f"printing the plan: median {statistics.median(print_times):.2f} s; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
