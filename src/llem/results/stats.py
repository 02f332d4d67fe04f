"""Summary statistics of latency samples."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def distribution(samples_s: Sequence[float]) -> dict[str, float | int | None]:
    """Mean, p50, p90, p99 (seconds, linear interpolation) and count of ``samples_s``."""
    if not samples_s:
        return {"mean_s": None, "p50_s": None, "p90_s": None, "p99_s": None, "count": 0}
    arr = np.asarray(samples_s, dtype=float)
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {
        "mean_s": float(arr.mean()),
        "p50_s": float(p50),
        "p90_s": float(p90),
        "p99_s": float(p99),
        "count": int(arr.size),
    }
