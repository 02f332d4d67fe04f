"""Benchmark: the report of a 200-experiment x 3-cycle study (goals: built in under 10 s, under 5 MB).

The study is a fake one (tests/fakes/results_tree.py: llem's own writers, energy measured, telemetry in
the first runs, one experiment failed) of 10 batch sizes x 5 output lengths x 4 prompt counts. Prints
the build time (wall and CPU seconds), the file's size, and how much of it is plotly.js (written once).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import plotly

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fakes

from tests.fakes.results_tree import make_study  # noqa: E402

from llem.report import build_report  # noqa: E402

FACTORS = {
    "transformers.batch_size": [1, 2, 4, 8, 12, 16, 24, 32, 48, 64],
    "max_output_tokens": [32, 64, 128, 256, 512],
    "dataset.n_prompts": [64, 128, 256, 512],
}
CYCLES = 3
GOAL_S, GOAL_BYTES = 10.0, 5_000_000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        study = make_study(Path(tmp), factors=FACTORS, cycles=CYCLES, failed=[(7, None)], timeseries_runs=20)
        print(f"fake study of {200 * CYCLES} runs written in {time.perf_counter() - started:.1f} s")
        wall, cpu = time.perf_counter(), time.process_time()
        path = build_report([study])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = path.stat().st_size
    plotly_js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").stat().st_size
    print(
        f"report of 200 experiments x {CYCLES} cycles: built in {wall:.2f} s wall ({cpu:.2f} s CPU); "
        f"goal < {GOAL_S:.0f} s"
    )
    print(
        f"report size: {size / 1e6:.2f} MB ({size:,} bytes; plotly.js {plotly_js / 1e6:.2f} MB of it); "
        f"goal < {GOAL_BYTES / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main()
