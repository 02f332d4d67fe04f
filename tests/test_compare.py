"""Intervals, Pareto fronts and significance tests of llem.results.compare, against hand-computed values
and fake studies with a known effect or none."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from llem.errors import LlemError
from llem.results.collect import load_runs
from llem.results.compare import mean_interval, pareto_front, significance
from llem.results.significance import holm
from tests.fakes.results_tree import make_study

T_975_DF2 = 4.302652729911275  # Student's t, 97.5th percentile, 2 degrees of freedom
ENERGY = "energy_per_output_token_j"
FACTORS = ["config.dtype", "config.transformers.batch_size"]
SIGNIFICANT = re.compile(
    r"^\d+\.\d% (lower|higher) [a-z ]+ \(95% CI, unadjusted, \d+\.\d–\d+\.\d%\), p (=|<) [\d.e-]+$"
)


def runs_table(experiments: dict[str, tuple[dict, list[float | None]]]) -> pd.DataFrame:
    """Runs of ``{id: ({factor: level}, per-cycle values)}``: None is a failed cycle."""
    rows = [
        {"experiment_id": key, "status": "failed" if v is None else "completed", "m": v, **levels}
        for key, (levels, values) in experiments.items()
        for v in values
    ]
    return pd.DataFrame(rows)


def test_interval_of_zero_and_one_value():
    empty = mean_interval([])
    assert empty.n == 0 and all(math.isnan(x) for x in (empty.mean, empty.low, empty.high)) and empty.note
    one = mean_interval([3.0, math.nan])
    assert one.n == 1 and one.mean == 3.0 and math.isnan(one.low) and math.isnan(one.high) and "one value" in one.note


def test_interval_is_students_t():
    interval = mean_interval([10.0, 12.0, 14.0])  # mean 12, s = 2
    half = T_975_DF2 * 2 / math.sqrt(3)
    assert (interval.mean, interval.n, interval.method, interval.note) == (12.0, 3, "student-t", None)
    assert (interval.low, interval.high) == pytest.approx((12 - half, 12 + half))
    assert mean_interval([10.0, 12.0, 14.0], level=0.9).high < interval.high


def test_a_lower_bound_below_zero_is_clipped_with_a_note_only_for_non_negative_metrics():
    half = T_975_DF2 * 1 / math.sqrt(3)  # 1, 2, 3: mean 2, s = 1
    clipped = mean_interval([1.0, 2.0, 3.0, None])
    assert clipped.low == 0.0 and clipped.high == pytest.approx(2 + half) and "unreliable" in clipped.note
    signed = mean_interval([1.0, 2.0, 3.0], nonnegative=False)
    assert signed.low == pytest.approx(2 - half) and signed.note is None
    with pytest.raises(ValueError, match="negative"):
        mean_interval([1.0, -2.0])


def test_intervals_of_skewed_small_samples_never_go_below_zero():
    rng = np.random.default_rng(7)
    intervals = [mean_interval(rng.lognormal(0.0, 1.5, n)) for n in rng.integers(2, 6, 300)]
    assert all(i.low >= 0 and i.low <= i.mean <= i.high for i in intervals)
    clipped = [i for i in intervals if i.low == 0]
    assert clipped and all("unreliable" in i.note for i in clipped)


def test_holm_against_hand_computed_values():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> running max 0.06
    assert holm(np.array([0.01, 0.04, 0.03, 0.005])) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(np.array([0.01, math.nan, 0.04])) == pytest.approx([0.02, math.nan, 0.04], nan_ok=True)
    assert holm(np.array([0.5, 0.6])).tolist() == [1.0, 1.0]
    assert holm(np.array([])).size == 0


def test_pareto_front_of_a_hand_drawn_example():
    points = pd.DataFrame(
        {
            "energy": [1.0, 2.0, 2.0, 3.0, 1.0, math.nan, 4.0, 0.5],
            "speed": [10.0, 20.0, 15.0, 20.0, 10.0, 100.0, 30.0, 5.0],
        },
        index=list("ABCDEFGH"),
    )
    front = pareto_front(points, minimize=["energy"], maximize=["speed"])
    # C and D lose to B; A and E are equal (neither dominates the other); F has no energy figure
    assert front[front].index.tolist() == ["A", "B", "E", "G", "H"]
    assert front.index.equals(points.index) and front.dtype == bool
    assert pareto_front(points, minimize=["energy"], maximize=[])[lambda s: s].index.tolist() == ["H"]
    with pytest.raises(ValueError):
        pareto_front(points, minimize=[], maximize=[])


def test_welch_p_and_fieller_interval_of_a_hand_built_pair():
    x, y = [10.0, 10.5, 9.5], [8.0, 8.6, 7.7]
    table = significance(
        runs_table({"a": ({"f": 1}, x), "b": ({"f": 2}, y)}),
        "m",
        ["f"],
        lower_is_better=True,
        id_column="experiment_id",
    )
    (row,) = table.itertuples()
    assert (row.a, row.b, row.factor, row.level_a, row.level_b, row.n_a, row.n_b) == ("a", "b", "f", 1, 2, 3, 3)
    assert row.test == "welch" and row.p == pytest.approx(stats.ttest_ind(x, y, equal_var=False).pvalue)
    assert row.p_holm == row.p and row.diff_pct == pytest.approx(100 * (np.mean(y) / np.mean(x) - 1))
    # Fieller: at each bound rho, (mean_y - rho mean_x)^2 = t^2 (v_y + rho^2 v_x), t at the estimate's df
    vx, vy = np.var(x, ddof=1) / 3, np.var(y, ddof=1) / 3
    ratio = np.mean(y) / np.mean(x)
    df = (vy + ratio**2 * vx) ** 2 / (vy**2 / 2 + ratio**4 * vx**2 / 2)
    t = stats.t.ppf(0.975, df)
    for bound in (row.ci_low_pct, row.ci_high_pct):
        rho = 1 + bound / 100
        assert (np.mean(y) - rho * np.mean(x)) ** 2 == pytest.approx(t**2 * (vy + rho**2 * vx))
    assert row.ci_low_pct < row.diff_pct < row.ci_high_pct < 0 and row.significant
    assert SIGNIFICANT.match(row.sentence)
    assert row.sentence.startswith(f"{-row.diff_pct:.1f}% lower m (95% CI, unadjusted, ")


def test_a_known_effect_is_found_and_the_other_factor_is_not(tmp_path):
    effects = {"dtype": {"bfloat16": 0.8}}
    folder = make_study(tmp_path, factors={"dtype": ["float16", "bfloat16"], "transformers.batch_size": [1, 4]},
                        cycles=5, seed=3, effects=effects, spread=0.0)  # fmt: skip
    table = significance(load_runs(folder), ENERGY, FACTORS, lower_is_better=True)
    assert len(table) == 4 and set(table["test"]) == {"welch"}
    by_factor = {factor: group for factor, group in table.groupby("factor")}
    dtype = by_factor["config.dtype"]
    assert dtype["significant"].all() and (dtype["level_b"] == "bfloat16").all()
    assert ((dtype["ci_low_pct"] < -20) & (dtype["ci_high_pct"] > -20)).all()
    assert all(SIGNIFICANT.match(s) and "lower energy per output token" in s for s in dtype["sentence"])
    batch = by_factor["config.transformers.batch_size"]
    assert not batch["significant"].any()
    assert all(s.startswith("no detectable difference in energy per output token with n = 5 and 5 (")
               for s in batch["sentence"])  # fmt: skip
    throughput = significance(load_runs(folder), "output_tokens_per_s", FACTORS, lower_is_better=False)
    faster = throughput[throughput["factor"] == "config.dtype"]
    assert (faster["diff_pct"] > 0).all() and all("higher throughput" in s for s in faster["sentence"])


def test_null_data_gives_no_significant_difference(tmp_path):
    folder = make_study(tmp_path, factors={"dtype": ["float16", "bfloat16"], "transformers.batch_size": [1, 4, 16]},
                        cycles=4, seed=11, effects={}, spread=0.0)  # fmt: skip
    table = significance(load_runs(folder), ENERGY, FACTORS, lower_is_better=True)
    assert len(table) == 9 and not table["significant"].any() and table["p"].notna().all()
    assert all(s.startswith("no detectable difference") for s in table["sentence"])
    assert all("95% CI, unadjusted, " in s and ", p = " in s for s in table["sentence"])  # the p alone is adjusted


def test_fewer_than_two_cycles_means_no_test_and_no_holm_share():
    runs = runs_table(
        {
            "a": ({"f": 1}, [10.0, 10.2, 9.9]),
            "b": ({"f": 2}, [12.0, 12.1, 11.8]),
            "c": ({"f": 3}, [11.0, None, None]),
            "d": ({"f": 4}, [None, None, None]),
        }
    )
    table = significance(runs, "m", ["f"], lower_is_better=True).set_index(["a", "b"])
    untested = table[table["test"] == "none"]
    assert len(untested) == 5 and untested["p"].isna().all() and not untested["significant"].any()
    assert table.loc[("c", "a"), "sentence"] == "no test possible: fewer than 2 cycles (n = 1 and 3)"
    assert table.loc[("c", "d"), "sentence"] == "no test possible: fewer than 2 cycles (n = 1 and 0)"
    assert table.loc[("b", "a"), "p_holm"] == table.loc[("b", "a"), "p"]  # the only test: nothing to adjust


def test_two_cycles_get_an_exact_permutation_test():
    runs = runs_table({"a": ({"f": 1}, [10.0, 10.1]), "b": ({"f": 2}, [5.0, 5.2, 5.1])})
    (row,) = significance(runs, "m", ["f"], lower_is_better=True).itertuples()
    assert row.test == "permutation" and row.p == pytest.approx(2 / math.comb(5, 2))
    assert "a permutation test of 2 and 3 cycles cannot give p below 0.2" in row.sentence
    runs = runs_table({"a": ({"f": 1}, [10.0, 10.1]), "b": ({"f": 2}, [5.0, 5.2, 5.1, 5.3, 4.9, 5.05, 5.15, 4.95])})
    (row,) = significance(runs, "m", ["f"], lower_is_better=True).itertuples()
    assert row.test == "permutation" and row.p == pytest.approx(2 / math.comb(10, 2)) and row.significant


def test_cycles_without_variation_cannot_be_tested():
    runs = runs_table({"a": ({"f": 1}, [64.0, 64.0]), "b": ({"f": 2}, [32.0, 32.0])})
    (row,) = significance(runs, "m", ["f"], lower_is_better=True).itertuples()
    assert row.test == "none" and row.sentence.startswith("no test possible: no variation between cycles")


def test_baseline_against_every_other_experiment():
    runs = runs_table(
        {
            "base": ({"f": 1, "g": "x"}, [10.0, 10.2, 9.9]),
            "f2": ({"f": 2, "g": "x"}, [8.0, 8.1, 7.9]),
            "g2": ({"f": 1, "g": "y"}, [12.0, 12.2, 11.9]),
            "both": ({"f": 2, "g": "y"}, [7.0, 7.2, 6.9]),
        }
    )
    table = significance(runs, "m", ["f", "g"], lower_is_better=True, baseline="base")
    against = table[table["a"] == "base"]
    assert sorted(against["b"]) == ["both", "f2", "g2"] and not (table["b"] == "base").any()
    assert len(table) == 5  # the 4 one-factor pairs (two with the baseline) and the baseline against "both"
    both = against.set_index("b").loc["both"]
    assert both["factor"] == "(baseline)" and both["level_a"] == "f=1; g=x" and both["level_b"] == "f=2; g=y"
    assert against.set_index("b").loc["g2", "diff_pct"] > 0  # worse than the baseline, still b of the pair
    with pytest.raises(LlemError, match="baseline 'nope'"):
        significance(runs, "m", ["f", "g"], lower_is_better=True, baseline="nope")


def test_the_baseline_is_compared_with_experiments_of_the_same_factors():
    """Two studies of one configuration: no factor varies, the baseline is still compared."""
    runs = runs_table({"first/a": ({}, [10.0, 10.2, 9.9]), "second/a": ({}, [10.1, 9.8, 10.0])})
    (row,) = significance(runs, "m", [], lower_is_better=True, baseline="second/a").itertuples()
    assert (row.a, row.b, row.factor, row.test) == ("second/a", "first/a", "(baseline)", "welch")
    assert row.sentence.startswith("no detectable difference in m with n = 3 and 3")


def test_no_pairs_give_an_empty_table_with_every_column():
    table = significance(runs_table({"a": ({"f": 1}, [1.0, 2.0])}), "m", ["f"], lower_is_better=True)
    assert table.empty and "sentence" in table.columns and "p_holm" in table.columns
