"""Significance: pairs of experiments that differ in one factor (and each against a baseline the user
names), tested on their per-cycle values by :func:`llem.results.compare.significance` with
Holm–Bonferroni correction, stated in sentences."""

from __future__ import annotations

from html import escape

import pandas as pd

from llem.errors import LlemError
from llem.report.data import ReportData, factor_name
from llem.results.compare import significance
from llem.results.figures import ENERGY, METRICS, THROUGHPUT

MAX_ROWS = 30  # comparisons listed per figure; the significant ones first, the count of all is given


def baseline_key(data: ReportData, baseline: str | None) -> str | None:
    """The experiment key the user named as baseline (its id, or ``<folder label>/id`` across folders);
    a :class:`LlemError` when none, several, or one without a completed run match it."""
    if baseline is None:
        return None
    keys = data.experiments["key"].astype(str)
    matches = keys[(keys == baseline) | (data.experiments["experiment_id"].astype(str) == baseline)]
    if len(matches) != 1:
        found = "several experiments match it" if len(matches) else "no experiment has that id"
        raise LlemError(f"--baseline {baseline}: {found}; give one of: {', '.join(keys)}")
    if data.experiments.loc[matches.index[0], "n"] == 0:
        usable = keys[data.experiments["n"] > 0]
        raise LlemError(
            f"--baseline {baseline}: that experiment has no completed run with a readable result; "
            f"give one of: {', '.join(usable) or '(none: no run completed)'}"
        )
    return str(matches.iloc[0])


def significance_html(data: ReportData, baseline: str | None) -> str:
    """A table of comparisons per tested figure (energy per output token when measured, throughput),
    or a sentence saying why no test is possible; ``baseline``: a key of :func:`baseline_key`."""
    done = data.runs[data.runs["readable"]]  # completed, with a result.json that reads
    if done.empty:
        return "<p>No completed run: nothing to compare.</p>"
    cycles = done.groupby("key").size()
    if cycles.max() < 2:
        return (
            "<p>No test is possible: every experiment has fewer than 2 completed cycles, and a test needs the "
            "spread between cycles of the same configuration. Run the study with <code>n_cycles</code> of 2 or "
            "more (3 or more to detect differences of a few percent).</p>"
        )
    if not data.factors and baseline is None:
        return "<p>Nothing to compare: no configuration key varies between the experiments.</p>"
    metrics = [m for m in (ENERGY, THROUGHPUT) if done[m].notna().any()]
    parts = []
    for metric in metrics:
        label, lower_is_better = METRICS[metric].label, METRICS[metric].lower_is_better
        table = significance(
            done, metric, data.factors, lower_is_better=lower_is_better, baseline=baseline, id_column="key"
        )
        parts.append(f"<h3>{escape(label.split(' (')[0])}</h3>{_comparisons(data, table)}")
    return "".join(parts)


def _comparisons(data: ReportData, table: pd.DataFrame) -> str:
    if table.empty:
        return "<p>No pair of experiments differs in exactly one factor.</p>"
    n_significant = int(table["significant"].sum())
    intro = (
        f"<p>{len(table)} comparison(s), p-values Holm–Bonferroni-corrected across them: "
        f"{n_significant} significant at the 5% level."
    )
    ranked = table.sort_values(["significant", "p_holm"], ascending=[False, True], na_position="last")
    if len(ranked) > MAX_ROWS:
        intro += f" The first {MAX_ROWS} are listed, the significant ones first."
    labels = data.experiments.set_index("key")["label"]
    rows = "".join(
        "<tr{cls}><td>{factor}</td><td>{a}</td><td>{b}</td><td>{sentence}</td><td>{p}</td></tr>".format(
            cls=" class='significant'" if row["significant"] else "",
            factor=escape(factor_name(str(row["factor"]))),
            a=escape(str(labels.get(row["a"], row["a"]))),
            b=escape(str(labels.get(row["b"], row["b"]))),
            sentence=escape(str(row["sentence"])),
            p="" if pd.isna(row["p_holm"]) else f"{row['p_holm']:.3g}",
        )
        for _, row in ranked.head(MAX_ROWS).iterrows()
    )
    head = "<tr><th>factor</th><th>a</th><th>b</th><th>b against a</th><th>p (Holm)</th></tr>"
    return f"{intro}</p><table class='data'>{head}{rows}</table>"
