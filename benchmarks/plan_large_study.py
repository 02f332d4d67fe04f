"""Benchmark: planning a 10,000-experiment study (expand, validate every experiment, order, encode).

Validation runs the schema and cross-field checks on plain data, without a Hydra composition per
experiment. Goal: under 10 s on a 2-core machine.

    python benchmarks/plan_large_study.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from llem.study.plan import plan_study
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
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        plan = plan_study(parse_study(STUDY))
        times.append(time.perf_counter() - start)
    print(
        f"planned {len(plan.experiments)} experiments / {len(plan.runs)} runs: "
        f"median {statistics.median(times):.2f} s over {args.repeat} repeats "
        f"(min {min(times):.2f} s, max {max(times):.2f} s; goal < 10 s)"
    )


if __name__ == "__main__":
    main()
