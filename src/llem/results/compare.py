"""Comparing experiments: the mean of a metric with its interval, Pareto fronts, and pairwise tests
(:func:`~llem.results.significance.significance`, kept in its own module and exported here).

Figures are in the metric's own unit. Pure functions of tables: numpy, scipy and pandas only.

**Intervals** (:func:`mean_interval`): Student's t interval of the mean over the cycles. A cycle's
figure is an average over a whole measurement window (thousands of tokens), so cycle values are
close to normal, which is what the t interval assumes. For a non-negative metric a lower bound below
zero is clipped at 0: the true mean cannot be negative, so clipping loses no coverage, but a bound
that low means the cycles spread too widely for ``n`` values to place the mean, and the interval's
``note`` says it is unreliable at this n. It is also unreliable, without a note, when cycles are
strongly skewed or one is an outlier (a disturbed cycle) and n is small (under about 5).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from llem.results.significance import significance

__all__ = ["Interval", "mean_interval", "pareto_front", "significance"]


@dataclass(frozen=True)
class Interval:
    """The mean of ``n`` values and its confidence interval ``[low, high]``, in the values' unit."""

    mean: float
    low: float
    high: float
    n: int
    method: str
    note: str | None = None


def mean_interval(values: Iterable[float], *, nonnegative: bool = True, level: float = 0.95) -> Interval:
    """The mean of ``values`` (NaN dropped) with its Student's t interval at ``level`` (module docstring).

    n == 0: every field NaN; n == 1: the mean alone, with a note. ``nonnegative``: the lower bound
    never goes below 0 (clipped, with a note); negative values are then a ValueError.
    """
    clean = np.asarray([v for v in values if v is not None and not pd.isna(v)], dtype=float)
    n = clean.size
    if nonnegative and (clean < 0).any():
        raise ValueError(f"negative values for a non-negative metric: {clean[clean < 0][:3].tolist()}")
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, "none", "no values")
    mean = float(clean.mean())
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1, "none", "one value: no interval")
    half = _t_quantile(0.5 + level / 2, n - 1) * float(clean.std(ddof=1)) / math.sqrt(n)
    low, note = mean - half, None
    if nonnegative and low < 0:
        low, note = 0.0, f"lower bound clipped at 0: the {n} values spread too widely; unreliable at this n"
    return Interval(mean, low, mean + half, n, "student-t", note)


@functools.cache
def _t_quantile(q: float, df: int) -> float:
    """Student's t quantile (cached: a study asks the same few thousands of times)."""
    from scipy import stats  # slow to import: only when there is an interval to compute

    return float(stats.t.ppf(q, df))


def pareto_front(table: pd.DataFrame, minimize: Sequence[str], maximize: Sequence[str]) -> pd.Series:
    """True for the rows of ``table`` that no other row dominates (as good in every column, better in
    one). Equal rows do not dominate each other; a row with NaN in any used column is never on it."""
    columns = [*minimize, *maximize]
    if not columns:
        raise ValueError("pareto_front needs at least one column to minimize or maximize")
    costs = np.column_stack(
        [table[c].to_numpy(float) for c in minimize] + [-table[c].to_numpy(float) for c in maximize]
    )
    complete = ~np.isnan(costs).any(axis=1)
    front = complete.copy()
    candidates = costs[complete]
    for i in np.flatnonzero(complete):
        dominated = (candidates <= costs[i]).all(axis=1) & (candidates < costs[i]).any(axis=1)
        front[i] = not dominated.any()
    return pd.Series(front, index=table.index)
