"""Every measurement warning of the completed runs, grouped by kind, with counts and the runs affected."""

from __future__ import annotations

import re
from collections import defaultdict
from html import escape

from llem.report.data import ReportData

KIND_PREFIX_CHARS = 40  # a warning's text before its first colon names its kind when it is this short
MAX_LABELLED = 20  # experiments in a study whose runs are named by their factors here, not by id alone
NUMBER = re.compile(r"\d+(\.\d+)?")


def warning_kind(text: str) -> str:
    """``host busy: other processes used 67% ...`` -> ``host busy``; without a short prefix, the text
    with its numbers replaced by ``#`` (so ``GPU 0 throttled ... for 1.2 s`` and ``... 3.4 s`` group)."""
    prefix, colon, _ = text.partition(":")
    if colon and len(prefix) <= KIND_PREFIX_CHARS:
        return prefix.strip()
    return NUMBER.sub("#", text)


def warnings_html(data: ReportData) -> str:
    """A table: kind, number of warnings, the runs affected (by experiment, with their cycles), one example."""
    place = data.runs.set_index("job_dir")[["key", "label", "cycle"]]
    kinds: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
    many = len(data.experiments) > MAX_LABELLED  # name experiments by id alone (the table gives their factors)
    for job_dir, result in data.results.items():
        key, label, cycle = place.loc[job_dir]
        for text in result.warnings:
            kinds[warning_kind(text)].append((key if many else f"{label} [{key}]", int(cycle), text))
    if not kinds:
        return f"<p>No measurement warning in the {len(data.results)} completed run(s).</p>"
    rows = []
    for kind, found in sorted(kinds.items(), key=lambda item: -len(item[1])):
        cycles: dict[str, set[int]] = defaultdict(set)
        for experiment, cycle, _ in found:
            cycles[experiment].add(cycle)
        listed = "".join(
            f"<li>{escape(e)}: cycle {', '.join(map(str, sorted(c)))}</li>" for e, c in sorted(cycles.items())
        )
        runs = sum(len(c) for c in cycles.values())
        affected = (
            f"<details><summary>{runs} run(s) of {len(cycles)} experiment(s)</summary><ul>{listed}</ul></details>"
        )
        rows.append(
            f"<tr><td>{escape(kind)}</td><td>{len(found)}</td><td>{affected}</td><td>{escape(found[0][2])}</td></tr>"
        )
    head = "<tr><th>kind</th><th>warnings</th><th>runs affected</th><th>example</th></tr>"
    return f"<table class='data'>{head}{''.join(rows)}</table>"
