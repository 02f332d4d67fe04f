"""Numbers as a report writes them: three significant figures, an experiment's mean with its 95% CI."""

from __future__ import annotations

import math

import pandas as pd

from llem.report.data import METRICS

CLIPPED = "*"  # after a lower bound clipped at 0: the cycles spread too widely for their number


def number(value: float | None) -> str:
    """``1234.5`` -> ``1,235``; ``0.012345`` -> ``0.0123``; missing -> ``""``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def mean_ci(row: pd.Series, metric: str) -> str:
    """``12.3 (11.9 to 12.7)`` in the metric's display unit (:data:`CLIPPED` after a lower bound clipped at 0);
    the mean alone with one cycle; ``""`` when none."""
    scale = METRICS[metric][1]
    mean = row.get(f"{metric}.mean")
    if mean is None or pd.isna(mean):
        return ""
    low, high = row.get(f"{metric}.ci95_low"), row.get(f"{metric}.ci95_high")
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return number(mean * scale)
    clipped = CLIPPED if row.get(f"{metric}.ci95_clipped") is True else ""
    return f"{number(mean * scale)} ({number(low * scale)}{clipped} to {number(high * scale)})"
