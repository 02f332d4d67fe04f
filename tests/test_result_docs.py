"""docs/result-fields.md against the typed result model and the tables llem builds: every result.json
field in the section of its block, every timeseries.parquet and summary column, each with the unit its
name implies. A field added to llem.results.schema, or a column to the tables, fails here until it is
documented."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path

import pytest

from llem.results.collect import load_runs
from llem.results.schema import Record, RunResult
from llem.results.summary import AGGREGATED, aggregate
from llem.telemetry.timeseries import COLUMNS as TIMESERIES_COLUMNS
from tests.fakes.results_tree import make_single_run, make_study, make_sweep

DOC = Path(__file__).parents[1] / "docs" / "result-fields.md"
# Name endings and the unit they imply (the first that matches decides).
UNITS = (
    ("_per_s", "/s"),
    ("_gco2e", "gCO2e"),
    ("_s", "s"),
    ("_j", "J"),
    ("_w", "W"),
    ("_mb", "MiB"),
    ("_c", "°C"),
    ("_pct", "%"),
)


def sections() -> dict[str, dict[str, str]]:
    """Heading -> {name in a table row's first cell: that row's unit cell} of the tables under it."""
    found: dict[str, dict[str, str]] = {}
    rows: dict[str, str] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            rows = found.setdefault(line.lstrip("#").strip(), {})
        elif line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            for name in re.findall(r"`([^`]+)`", cells[0]):
                rows[name] = cells[1] if len(cells) > 2 else ""
    return found


def section(heading_part: str) -> dict[str, str]:
    (rows,) = [rows for heading, rows in sections().items() if heading_part in heading]
    return rows


def blocks(cls: type = RunResult, path: str = "") -> list[tuple[str, type]]:
    """``(dotted path, block type)`` of the result and every block in it (``[]`` a list's items,
    ``.*`` a mapping's values)."""
    found = [(path, cls)]
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.name == "other_fields":
            continue
        for suffix, block in _blocks_in(hints[field.name]):
            found += blocks(block, f"{path}.{field.name}{suffix}" if path else f"{field.name}{suffix}")
    return found


def _blocks_in(tp: typing.Any) -> list[tuple[str, type]]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return [b for arg in typing.get_args(tp) if arg is not type(None) for b in _blocks_in(arg)]
    if origin is list:
        return [("[]" + s, b) for s, b in _blocks_in(typing.get_args(tp)[0])]
    if origin is dict:
        return [(".*" + s, b) for s, b in _blocks_in(typing.get_args(tp)[1])]
    return [("", tp)] if isinstance(tp, type) and issubclass(tp, Record) else []


def unit_problem(name: str, unit: str) -> str | None:
    """What is wrong with ``unit`` for a field or column called ``name``, or None."""
    for ending, expected in UNITS:
        if name.endswith(ending):
            ok = unit.endswith(expected) if expected == "/s" else unit == expected or unit.startswith(expected + " ")
            return None if ok else f"{name}: unit {unit!r}, its name says {expected!r}"
    return None if unit else f"{name}: no unit cell (write - for none)"


def undocumented(result_type: type = RunResult) -> list[str]:
    """Each field of ``result_type`` and its blocks that is not in the table of its block's section,
    or whose unit cell disagrees with its name."""
    docs = sections()
    problems = []
    for path, block in blocks(result_type):
        headings = [h for h in docs if path in re.findall(r"`([^`]+)`", h)] if path else ["Top level"]
        if not headings:
            problems.append(f"no section headed `{path}` ({block.__name__})")
            continue
        rows, hints = docs[headings[0]], typing.get_type_hints(block)
        for field in dataclasses.fields(block):
            if field.name == "other_fields":
                continue
            where = f"{path}.{field.name}" if path else field.name
            if field.name not in rows:
                problems.append(f"{where} ({block.__name__}) is not in the table of section {headings[0]!r}")
            elif not _blocks_in(hints[field.name]) and (problem := unit_problem(field.name, rows[field.name])):
                problems.append(problem)  # a block's unit is in its own section
    return problems


def test_every_result_field_is_documented_in_its_blocks_section_with_its_unit():
    assert undocumented() == [], "docs/result-fields.md:\n" + "\n".join(undocumented())


def test_a_new_field_or_a_wrong_unit_is_named():
    @dataclasses.dataclass(kw_only=True)
    class Grown(RunResult):
        joules_spent_j: float = 0.0

    assert undocumented(Grown) == ["joules_spent_j (Grown) is not in the table of section 'Top level'"]
    assert unit_problem("energy_j", "W") == "energy_j: unit 'W', its name says 'J'"
    assert unit_problem("output_tokens_per_s", "tokens/s") is None and unit_problem("count", "") is not None


def test_every_timeseries_column_is_documented_with_its_unit():
    rows = section("timeseries.parquet")
    assert set(TIMESERIES_COLUMNS) <= set(rows), set(TIMESERIES_COLUMNS) - set(rows)
    assert [p for p in (unit_problem(c, rows[c]) for c in TIMESERIES_COLUMNS) if p] == []


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Runs of every kind of folder, with failures, measured energy and an estimate."""
    root = tmp_path_factory.mktemp("tables")
    study = make_study(root / "a", factors={"dtype": ["float32", "bfloat16"]}, cycles=2, failed=[(0, 0)])
    estimate = make_study(root / "b", factors={"dtype": ["float32"]}, cycles=1, energy_estimated=True)
    sweep = make_sweep(root / "c", factors={"dtype": ["float32", "bfloat16"]}, failed=[1], energy=False)
    return load_runs([study, estimate, sweep, make_single_run(root / "d")])


def test_every_summary_column_is_documented_with_its_unit(runs):
    rows = section("summary.csv (one row per run)")
    columns = [c for c in runs.columns if not c.startswith("config.")]
    assert "config.<key>" in rows and any(c.startswith("config.") for c in runs.columns)
    assert set(columns) <= set(rows), set(columns) - set(rows)
    assert [p for p in (unit_problem(c, rows[c]) for c in columns) if p] == []


def test_every_experiment_column_is_documented(runs):
    heading = "summary_experiments.csv"
    rows = section(heading)
    text = DOC.read_text(encoding="utf-8").split(f"## {heading}")[1]
    aggregated = {c.rpartition(".")[0] for c in aggregate(runs).columns if c.rpartition(".")[0] in AGGREGATED}
    assert aggregated == set(AGGREGATED)
    missing = []
    for column in aggregate(runs).columns:
        metric, _, stat = column.rpartition(".")
        if column.startswith("config."):
            missing += [] if "config.<key>" in rows else [column]
        elif metric in AGGREGATED:
            missing += [] if f"<metric>.{stat}" in rows and f"`{metric}`" in text else [column]
        elif column not in rows:
            missing.append(column)
    assert not missing, missing
