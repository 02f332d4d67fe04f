"""Benchmark: the report of a 200-experiment x 3-cycle study (goals: built in under 10 s, under 5 MB).

The study is a fake one (tests/fakes/results_tree.py: llem's own writers, energy measured, telemetry in
the first runs, one experiment failed) of 10 batch sizes x 5 output lengths x 4 prompt counts. Prints
the build time (wall and CPU seconds) with the vega-embed bundle made by vl-convert (a machine's first
report) and read from llem's cache (every later one), after scipy's import (timed apart: paid once per
process), the file's size, and how much of it is the bundle (written once).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from importlib import import_module
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fakes

from tests.fakes.results_tree import make_study  # noqa: E402

from llem.report import build_report  # noqa: E402
from llem.report.page import vega_bundle  # noqa: E402

FACTORS = {
    "transformers.batch_size": [1, 2, 4, 8, 12, 16, 24, 32, 48, 64],
    "max_output_tokens": [32, 64, 128, 256, 512],
    "dataset.n_prompts": [32, 64, 128, 200],  # the built-in dataset holds 227 prompts
}
CYCLES = 3
GOAL_S, GOAL_BYTES = 10.0, 5_000_000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LLEM_CACHE_DIR"] = str(Path(tmp) / "cache")  # the first build makes the bundle
        started = time.perf_counter()
        study = make_study(Path(tmp), factors=FACTORS, cycles=CYCLES, failed=[(7, None)], timeseries_runs=20)
        runs = json.loads((study / "manifest.json").read_text())["runs"]
        experiments = len({run["experiment_id"] for run in runs})
        print(f"fake study of {len(runs)} runs written in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        import_module("scipy.stats")  # once per process (at a study's end already imported by its summary)
        print(f"import of scipy.stats, once per process: {time.perf_counter() - started:.2f} s")
        for cache in ("empty bundle cache: vl-convert makes it", "bundle read from the cache"):
            vega_bundle.cache_clear()  # as in a new process
            wall, cpu = time.perf_counter(), time.process_time()
            path = build_report([study])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"report of {experiments} experiments x {CYCLES} cycles ({cache}): built in {wall:.2f} s wall "
                f"({cpu:.2f} s CPU); goal < {GOAL_S:.0f} s"
            )
        size = path.stat().st_size
    bundle = len(vega_bundle().encode())
    print(
        f"report size: {size / 1e6:.2f} MB ({size:,} bytes; vega-embed bundle {bundle / 1e6:.2f} MB of it); "
        f"goal < {GOAL_BYTES / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main()
