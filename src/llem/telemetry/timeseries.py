"""``timeseries.parquet``: telemetry at 1 Hz, one row per GPU per second.

Columns (spec): ``timestamp_s`` (unix seconds, start of the second), ``gpu_index``, ``power_w``,
``temperature_c``, ``memory_used_mb``, ``memory_total_mb`` (means over the second),
``sm_utilisation_pct`` (mean), ``throttle_reasons`` (bitwise OR of the second's masks), and
``sm_clock_mhz`` and ``memory_clock_mhz`` (the current SM and memory clocks in MHz, means over the
second). A quantity NVML could not read for a GPU is null in that GPU's rows, never 0.
"""

from __future__ import annotations

from pathlib import Path

from llem.results.io import write_parquet_atomic
from llem.telemetry.sampler import Sample

COLUMNS = [
    "timestamp_s",
    "gpu_index",
    "power_w",
    "temperature_c",
    "memory_used_mb",
    "memory_total_mb",
    "sm_utilisation_pct",
    "throttle_reasons",
    "sm_clock_mhz",
    "memory_clock_mhz",
]
MEANS = [
    "power_w",
    "temperature_c",
    "memory_used_mb",
    "memory_total_mb",
    "sm_utilisation_pct",
    "sm_clock_mhz",
    "memory_clock_mhz",
]


def _or_all(values) -> int | None:  # type: ignore[no-untyped-def]
    present = [int(v) for v in values if v == v and v is not None]  # NaN != NaN
    if not present:
        return None
    out = 0
    for v in present:
        out |= v
    return out


def write_timeseries(samples: list[Sample], path: Path) -> int:
    """Write the 1 Hz table of ``samples`` to ``path`` atomically; returns the number of rows."""
    import pandas as pd

    frame = pd.DataFrame([vars(s) for s in samples], columns=COLUMNS)
    frame["timestamp_s"] = frame["timestamp_s"].astype(float).floordiv(1.0)
    frame[MEANS] = frame[MEANS].astype(float)  # None (not read) -> NaN, written as null
    grouped = frame.groupby(["timestamp_s", "gpu_index"], sort=True)
    table = grouped[MEANS].mean()
    table["throttle_reasons"] = grouped["throttle_reasons"].agg(_or_all).astype("Int64")
    table = table.reset_index()[COLUMNS]
    table["gpu_index"] = table["gpu_index"].astype("int32")
    write_parquet_atomic(path, table)
    return len(table)
