"""Summary statistics of latency samples."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llem.results.schema import Distribution


def distribution(samples_s: Sequence[float]) -> Distribution:
    """Mean, p50, p90, p99 (seconds, linear interpolation) and count of ``samples_s``; nulls when empty."""
    if not samples_s:
        return Distribution()
    arr = np.asarray(samples_s, dtype=float)
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return Distribution(
        mean_s=float(arr.mean()), p50_s=float(p50), p90_s=float(p90), p99_s=float(p99), count=int(arr.size)
    )
