"""Numbers as a report writes them: an experiment's mean with its 95% CI (by
:func:`llem.results.figures.number`), and chart data to 4 significant digits."""

from __future__ import annotations

import pandas as pd

from llem.results.figures import CLIPPED, METRICS, number


def mean_ci(row: pd.Series, metric: str) -> str:
    """``12.3 (11.9 to 12.7)`` in the metric's display unit (:data:`CLIPPED` after a lower bound clipped at 0);
    the mean alone with one cycle; ``""`` when none."""
    scale = METRICS[metric].scale
    mean = row.get(f"{metric}.mean")
    if mean is None or pd.isna(mean):
        return ""
    low, high = row.get(f"{metric}.ci95_low"), row.get(f"{metric}.ci95_high")
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return number(mean * scale)
    clipped = CLIPPED if row.get(f"{metric}.ci95_clipped") is True else ""
    return f"{number(mean * scale)} ({number(low * scale)}{clipped} to {number(high * scale)})"


def significant(value: float) -> float | None:
    """``value`` to 4 significant digits (what a chart can show, in a third of the JSON), ``None`` for NaN."""
    return None if pd.isna(value) else float(f"{value:.4g}")
