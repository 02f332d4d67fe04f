"""Pairwise tests of experiments on their per-cycle values, with Holm-Bonferroni correction.

Relative differences are in % of experiment a's mean. Pure functions of tables: numpy, scipy, pandas.

On the per-cycle values of two experiments: Welch's t-test
(unequal variances) when both have at least :data:`WELCH_MIN_N` cycles; with 2 cycles in a group
the variance rests on one degree of freedom and Welch's degrees of freedom are unreliable, so an
exact permutation test of the difference of means is used, which assumes nothing of the shape but
cannot give p below ``2 / C(n_a + n_b, n_a)`` (the sentence says so when that is above 0.05).
Fewer than 2 cycles in either group: no test. p values are Holm-Bonferroni adjusted over every
comparison of one call. The 95% CI of the relative difference ``mean_b / mean_a - 1`` is Fieller's
interval for a ratio of means (unequal variances, Welch-Satterthwaite degrees of freedom at the
estimated ratio); it is not adjusted for multiplicity (the sentence says "unadjusted", beside the
adjusted p), and it is unbounded (NaN) when ``mean_a`` is not clearly above zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from llem.errors import LlemError

WELCH_MIN_N = 3  # cycles per group from which Welch's t-test is used; below it, a permutation test
ALPHA = 0.05  # a comparison is significant when its Holm-adjusted p is below this
BASELINE_FACTOR = "(baseline)"
COLUMNS = [
    *("a", "b", "factor", "level_a", "level_b", "n_a", "n_b", "diff_pct", "ci_low_pct", "ci_high_pct"),
    *("p", "p_holm", "test", "significant", "sentence"),
]
METRIC_WORDS = {
    "output_tokens_per_s": "throughput",
    "total_tokens_per_s": "total throughput (input + output tokens)",
    "energy_per_output_token_j": "energy per output token",
    "adjusted_energy_per_output_token_j": "baseline-adjusted energy per output token",
    "tokens_per_joule": "output tokens per joule",
    "ttft_p50_s": "median time to first token",
    "ttft_p90_s": "p90 time to first token",
    "itl_p50_s": "median inter-token latency",
    "itl_p90_s": "p90 inter-token latency",
    "peak_memory_mb": "peak memory",
    "inference_time_s": "inference time",
    "energy_j": "energy",
    "adjusted_energy_j": "baseline-adjusted energy",
}


def significance(
    runs: pd.DataFrame,
    metric: str,
    factors: Sequence[str],
    *,
    lower_is_better: bool,
    baseline: str | None = None,
    id_column: str = "experiment_id",
) -> pd.DataFrame:
    """Tests of ``metric`` between experiments that differ in exactly one of ``factors`` (columns of
    ``runs``), and between ``baseline`` (an experiment id) and every other experiment; columns
    :data:`COLUMNS`. ``diff_pct`` is b relative to a; in a pair differing in one factor, ``b`` is the
    better of the two by mean (``lower_is_better``), so the sentence reads as the gain of b over a.
    Per-cycle values: the completed runs' non-NaN values of ``metric``."""
    levels = runs.groupby(id_column, sort=False)[list(factors)].first().astype(object)
    levels = levels.where(levels.notna(), None)
    if baseline is not None and baseline not in levels.index:
        known = ", ".join(map(str, levels.index[:8])) + (", ..." if len(levels) > 8 else "")
        raise LlemError(f"baseline {baseline!r}: no experiment with that id here; the ids are {known}")
    done = runs[runs["status"] == "completed"]
    values = {key: group.dropna().to_numpy(float) for key, group in done.groupby(id_column)[metric]}
    samples = {key: values.get(key, np.empty(0)) for key in levels.index}
    table = pd.DataFrame(_pairs(levels, baseline), columns=["a", "b", "factor"])
    table = _test(_oriented(table, samples, lower_is_better, baseline), samples)
    level_of = levels.to_dict("index")
    described = [_described(level_of, a, b, factor) for a, b, factor in zip(table["a"], table["b"], table["factor"])]
    table["level_a"] = [a for a, _ in described]
    table["level_b"] = [b for _, b in described]
    table["p_holm"] = holm(table["p"].to_numpy(float))
    table["significant"] = table["p_holm"] < ALPHA
    words = METRIC_WORDS.get(metric, metric.replace("_", " "))
    table["sentence"] = [_sentence(row, words) for row in table.itertuples()]
    return table[COLUMNS]


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p values of ``p`` (NaN stays NaN and does not count as a comparison)."""
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = order.size
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted


def _pairs(levels: pd.DataFrame, baseline: str | None) -> list[tuple[Any, Any, str]]:
    """``(a, b, factor)`` of experiments differing in exactly one factor, and ``baseline`` against every
    other experiment, whatever their differences."""
    ids = list(levels.index)
    rows = [tuple(r) for r in levels.itertuples(index=False)]
    pairs: dict[tuple[Any, Any], str] = {}
    for i, j in combinations(range(len(ids)), 2):
        differing = [f for f, x, y in zip(levels.columns, rows[i], rows[j]) if x != y]
        if len(differing) == 1:
            pairs[(ids[i], ids[j])] = differing[0]
        if baseline is not None and baseline in (ids[i], ids[j]):
            pair = (baseline, ids[j] if ids[i] == baseline else ids[i])
            pairs.pop((ids[i], ids[j]), None)
            pairs[pair] = differing[0] if len(differing) == 1 else BASELINE_FACTOR
    return [(a, b, factor) for (a, b), factor in pairs.items()]


def _oriented(
    pairs: pd.DataFrame, samples: dict[Any, np.ndarray], lower_is_better: bool, baseline: str | None
) -> pd.DataFrame:
    """``pairs`` with a and b swapped where b is the worse by mean (never in a pair with the baseline)."""
    means = {key: s.mean() if s.size else math.nan for key, s in samples.items()}
    mean_a, mean_b = pairs["a"].map(means), pairs["b"].map(means)
    worse = (mean_b > mean_a) if lower_is_better else (mean_b < mean_a)
    swap = (worse & (pairs["a"] != baseline) & (pairs["b"] != baseline)).to_numpy()
    pairs.loc[swap, ["a", "b"]] = pairs.loc[swap, ["b", "a"]].to_numpy()
    return pairs


def _test(pairs: pd.DataFrame, samples: dict[Any, np.ndarray]) -> pd.DataFrame:
    """``pairs`` with counts, relative difference, its CI, p, the test and its smallest possible p."""
    from scipy import special, stats  # slow to import: only when there are tests to run

    summary = {
        key: (s.size, s.mean() if s.size else math.nan, s.var(ddof=1) if s.size > 1 else math.nan)
        for key, s in samples.items()
    }
    n_a, mean_a, var_a = np.array([summary[key] for key in pairs["a"]], dtype=float).reshape(-1, 3).T
    n_b, mean_b, var_b = np.array([summary[key] for key in pairs["b"]], dtype=float).reshape(-1, 3).T
    tested = (np.minimum(n_a, n_b) >= 2) & (var_a + var_b > 0)
    welch = tested & (np.minimum(n_a, n_b) >= WELCH_MIN_N)
    permutation = tested & ~welch
    p, low, high = np.full((3, len(pairs)), np.nan)
    sd_a, sd_b = np.sqrt(var_a[welch]), np.sqrt(var_b[welch])
    p[welch] = stats.ttest_ind_from_stats(
        mean_b[welch], sd_b, n_b[welch], mean_a[welch], sd_a, n_a[welch], False
    ).pvalue
    for i in np.flatnonzero(permutation):
        data = (samples[pairs["b"].iat[i]], samples[pairs["a"].iat[i]])
        p[i] = stats.permutation_test(data, _mean_difference, n_resamples=math.inf, vectorized=True).pvalue
    se2_a, se2_b = var_a[tested] / n_a[tested], var_b[tested] / n_b[tested]  # squared standard errors
    low[tested], high[tested] = _fieller_pct(mean_a[tested], mean_b[tested], se2_a, se2_b, n_a[tested], n_b[tested])
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where(mean_a != 0, 100 * (mean_b / mean_a - 1), np.nan)
        floor = np.where(permutation, np.minimum(1.0, 2 / special.comb(n_a + n_b, n_a)), np.nan)
    return pairs.assign(
        n_a=n_a.astype(int), n_b=n_b.astype(int), diff_pct=diff, ci_low_pct=low, ci_high_pct=high, p=p,
        test=np.select([welch, permutation], ["welch", "permutation"], "none"), floor=floor,
    )  # fmt: skip


def _described(level_of: dict[Any, dict[str, Any]], a: Any, b: Any, factor: str) -> tuple[Any, Any]:
    """The levels of ``factor`` in a and b; for a baseline pair, ``factor=level`` of every difference."""
    if factor != BASELINE_FACTOR:
        return level_of[a][factor], level_of[b][factor]
    differing = [f for f, level in level_of[a].items() if level != level_of[b][f]]
    text_a, text_b = ("; ".join(f"{f}={level_of[key][f]}" for f in differing) for key in (a, b))
    return text_a, text_b


def _mean_difference(y: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    return np.mean(y, axis=axis) - np.mean(x, axis=axis)


def _fieller_pct(
    mx: np.ndarray, my: np.ndarray, vx: np.ndarray, vy: np.ndarray, nx: np.ndarray, ny: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """95% CI of ``my / mx - 1`` in % by Fieller's theorem (``vx``, ``vy``: squared standard errors of
    the means of ``nx`` and ``ny`` values); NaN where the interval is unbounded."""
    from scipy import stats

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mx != 0, my / mx, 1.0)
        df = (vy + ratio**2 * vx) ** 2 / (vy**2 / (ny - 1) + ratio**4 * vx**2 / (nx - 1))
        t = stats.t.ppf(0.975, df)
        denominator = mx**2 - t**2 * vx
        discriminant = mx**2 * vy + my**2 * vx - t**2 * vx * vy
        bounded = (denominator > 0) & (discriminant >= 0)
        root = t * np.sqrt(np.where(bounded, discriminant, np.nan))
        return 100 * ((mx * my - root) / denominator - 1), 100 * ((mx * my + root) / denominator - 1)


def _sentence(row: Any, words: str) -> str:
    """The comparison in words: effect, unadjusted CI and Holm-adjusted p, or why nothing was found or tested."""
    counts = f"n = {row.n_a} and {row.n_b}"
    if row.test == "none":
        if min(row.n_a, row.n_b) < 2:
            return f"no test possible: fewer than 2 cycles ({counts})"
        return f"no test possible: no variation between cycles in either experiment ({counts})"
    p = "p < 0.001" if row.p_holm < 0.001 else f"p = {row.p_holm:.2g}"
    if math.isnan(row.diff_pct):
        found = "a difference" if row.significant else "no detectable difference"
        return f"{found} in {words} from a mean of 0 ({counts}, {p})"
    if row.significant:
        up = row.diff_pct > 0
        low, high = (row.ci_low_pct, row.ci_high_pct) if up else (-row.ci_high_pct, -row.ci_low_pct)
        return f"{abs(row.diff_pct):.1f}% {'higher' if up else 'lower'} {words} ({_ci(low, high)}), {p}"
    detail = f"{_pct(row.diff_pct, sign=True)}%, {_ci(row.ci_low_pct, row.ci_high_pct)}, {p}"
    if row.floor > ALPHA:
        detail += f"; a permutation test of {row.n_a} and {row.n_b} cycles cannot give p below {row.floor:.2g}"
    return f"no detectable difference in {words} with {counts} ({detail})"


def _ci(low: float, high: float) -> str:
    if math.isnan(low):
        return "95% CI, unadjusted, unbounded"
    return f"95% CI, unadjusted, {_pct(low)}{'–' if low >= 0 else ' to '}{_pct(high)}%"


def _pct(value: float, sign: bool = False) -> str:
    return f"{value:{'+' if sign else ''}.1f}".replace("-", "−")
