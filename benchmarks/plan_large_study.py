"""Benchmark: planning large studies.

1. ``llem plan`` of a 10,000-run study (3,334 experiments x 3 cycles), the whole command in a fresh
   process as a user runs it: start-up, imports, expansion, validation of every experiment,
   ordering, encoding and printing. Goal: under 2 s on a quiet 2-core machine.
2. ``plan_study`` of a 10,000-experiment study (30,000 runs) in this process, and printing it as
   ``llem plan`` does (plain console, summarised). Goal: under 2 s.

Validation runs the schema and cross-field checks on plain data, without a Hydra composition per
experiment. The load average is printed, and the CPU seconds beside the wall seconds: on a busy
machine the wall time grows with the load, the CPU time much less.

    python benchmarks/plan_large_study.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console

from llem.study.plan import plan_study
from llem.study.report import print_plan
from llem.study.spec import parse_study


def study(n_prompts: int) -> dict:
    """A sweep of 2 dtypes x 50 batch sizes x ``n_prompts`` prompt counts, 3 cycles."""
    return {
        "name": "plan-benchmark",
        "model": "llem-tiny",
        "sweep": {
            "dtype": ["float16", "bfloat16"],
            "transformers.batch_size": list(range(1, 51)),
            "dataset.n_prompts": list(range(1, n_prompts + 1)),
        },
        "study_execution": {"n_cycles": 3, "experiment_order": "shuffle"},
    }


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def plan_command(repeat: int) -> str:
    """``llem plan`` of a study of 10,200 runs (2 x 50 x 34 experiments x 3 cycles), end to end."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "study.yaml"
        path.write_text(yaml.safe_dump(study(34)))
        times, cpu = [], []
        for _ in range(repeat):
            start, cpu_start = time.perf_counter(), children_cpu_s()
            subprocess.run([sys.executable, "-m", "llem.cli", "plan", str(path)], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
            cpu.append(children_cpu_s() - cpu_start)
    return (
        f"llem plan of a 10,200-run study (3,400 experiments), whole command: median {statistics.median(times):.2f} s"
        f" (min {min(times):.2f} s; goal < 2 s), CPU {statistics.median(cpu):.2f} s"
    )


def plan_in_process(repeat: int) -> str:
    times, cpu_times, print_times = [], [], []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        plan = plan_study(parse_study(study(100)))
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
        start = time.perf_counter()
        print_plan(plan, Console(file=io.StringIO(), width=120, color_system=None))
        print_times.append(time.perf_counter() - start)
    return (
        f"plan_study of {len(plan.experiments)} experiments / {len(plan.runs)} runs: "
        f"median {statistics.median(times):.2f} s (min {min(times):.2f} s, max {max(times):.2f} s; goal < 2 s), "
        f"CPU {statistics.median(cpu_times):.2f} s; printing the plan: median {statistics.median(print_times):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(plan_command(args.repeat))
    print(plan_in_process(args.repeat))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
