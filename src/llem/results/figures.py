"""How llem shows an experiment's figures, in the terminal ranking and in the report alike: each metric's
label, unit and direction, and one way of writing a number."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import pandas as pd


class Metric(NamedTuple):
    """A shown metric of :data:`llem.results.summary.AGGREGATED`: ``label`` with its unit (the report's),
    ``scale`` (factor from the column's unit to the label's), whether ``lower_is_better``, and
    ``heading``, a short label for a terminal column in the same unit."""

    label: str
    scale: float
    lower_is_better: bool
    heading: str


ENERGY = "energy_per_output_token_j"
THROUGHPUT = "output_tokens_per_s"
METRICS: dict[str, Metric] = {
    THROUGHPUT: Metric("output tok/s", 1.0, False, "output tok/s"),
    ENERGY: Metric("energy / output token (mJ)", 1e3, True, "energy/token mJ"),
    "adjusted_energy_per_output_token_j": Metric(
        "baseline-adjusted energy / output token (mJ)", 1e3, True, "adjusted mJ"
    ),
    "ttft_p50_s": Metric("TTFT p50 (ms)", 1e3, True, "TTFT p50 ms"),
    "ttft_p90_s": Metric("TTFT p90 (ms)", 1e3, True, "TTFT p90 ms"),
    "itl_p50_s": Metric("ITL p50 (ms)", 1e3, True, "ITL p50 ms"),
    "peak_memory_mb": Metric("peak memory (MiB)", 1.0, True, "peak MiB"),
}
CLIPPED = "*"  # after a lower bound clipped at 0: the cycles spread too widely for their number


def number(value: float | None) -> str:
    """Three significant figures, whole numbers with thousands separators from 1000 up:
    ``1234.5`` -> ``1,235``; ``0.012345`` -> ``0.0123``; missing (None, NaN) -> ``""``; infinite ->
    ``inf`` / ``-inf``."""
    if value is None or math.isnan(value):
        return ""
    if math.isinf(value):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def interval(row: Mapping[str, Any], metric: str, *, to: str, missing: str) -> str:
    """An experiment's mean of ``metric`` with its 95% CI in the metric's shown unit: ``12.3 (11.9{to}12.7)``,
    :data:`CLIPPED` after a lower bound clipped at 0; the mean alone with one cycle; ``missing`` without
    a mean. ``row``: a row of :func:`llem.results.summary.aggregate`."""
    scale = METRICS[metric].scale
    mean, low, high = (row.get(f"{metric}.{k}") for k in ("mean", "ci95_low", "ci95_high"))
    if _absent(mean):
        return missing
    if _absent(low) or _absent(high):
        return number(mean * scale)
    clipped = CLIPPED if row.get(f"{metric}.ci95_clipped") is True else ""
    return f"{number(mean * scale)} ({number(low * scale)}{clipped}{to}{number(high * scale)})"


def _absent(value: object) -> bool:
    return value is None or bool(pd.isna(value))
