"""The report's experiments table: a Vega-Lite chart of text columns, headed by the columns' names, whose
"sort by" select orders the rows; checked on its spec, laid out by Vega itself (vl-convert's scenegraph),
and sorted in a real headless browser."""

from __future__ import annotations

import json
import re

import pytest
import vl_convert

from llem.report import build_report
from llem.report.data import load_report_data
from llem.report.tables import experiments_chart
from llem.results.figures import METRICS
from tests.fakes.results_tree import make_study
from tests.test_report_browser import needs_chromium, render

FACTORS = {"dtype": ["float16", "bfloat16"], "transformers.batch_size": [1, 4]}
THROUGHPUT_ENTRY = "output tok/s, highest first"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Four experiments of three cycles; the first failed in every cycle (no figures: sorted last)."""
    return make_study(tmp_path_factory.mktemp("table"), factors=FACTORS, failed=[(0, None)])


@pytest.fixture(scope="module")
def data(study):
    return load_report_data([study])


@pytest.fixture(scope="module")
def spec(data):
    return experiments_chart(data).to_dict()


def headers(spec: dict) -> list[str]:
    """Each column's header, its lines joined (a line broken after a dot joins without a space)."""
    titles = [" ".join(line for line in view["title"]["text"] if line) for view in spec["hconcat"]]
    return [title.replace(". ", ".") for title in titles]


def column(spec: dict, header: str) -> list[str]:
    """The cells of the column headed ``header``, in run order, from the chart's data."""
    field = f"c{headers(spec).index(header)}"
    return [row[field] for row in spec["data"]["values"]]


def test_the_columns_are_named_and_hold_the_factor_values(spec):
    shown = [metric.label for metric in METRICS.values()]  # energy measured, memory too: every figure
    assert headers(spec) == ["id", "dtype", "transformers.batch_size", "runs done", "status", *shown, "reason"]
    assert column(spec, "dtype") == ["float16", "float16", "bfloat16", "bfloat16"]
    assert column(spec, "transformers.batch_size") == ["1", "4", "1", "4"]
    assert column(spec, "runs done") == ["0/3", "3/3", "3/3", "3/3"]
    assert column(spec, "status") == ["failed", "completed", "completed", "completed"]
    assert column(spec, "reason")[0].startswith("OutOfMemoryError: CUDA out of memory")
    throughput = column(spec, "output tok/s")
    assert throughput[0] == "" and all(re.fullmatch(r"[\d,.]+ \([\d,.]+ to [\d,.]+\)", t) for t in throughput[1:])


def test_studies_compared_are_named_in_a_first_column_and_skipped_ones_give_their_reason(tmp_path):
    studies = [
        make_study(tmp_path, factors={"dtype": ["float16"]}, cycles=2, name="first"),
        make_study(tmp_path, factors={"dtype": ["bfloat16"]}, cycles=2, name="second", skipped=[(0, None)]),
    ]
    spec = experiments_chart(load_report_data(studies)).to_dict()
    assert headers(spec)[:2] == ["study", "id"]
    assert column(spec, "study") == ["first", "second"]
    assert column(spec, "status") == ["completed", "skipped"]
    assert column(spec, "reason")[0] == "" and column(spec, "reason")[1] != ""


def test_the_select_offers_run_order_then_each_figure_best_first(spec):
    (param,) = spec["params"]
    assert param["value"] == "run order"
    assert param["bind"]["input"] == "select"
    assert param["bind"]["options"] == [
        "run order",
        THROUGHPUT_ENTRY,
        *(f"{m.label}, lowest first" for m in METRICS.values() if m.lower_is_better),
    ]


def test_each_experiment_is_written_once(spec, data):
    text = json.dumps(spec)
    assert len(spec["data"]["values"]) == len(data.experiments)
    for experiment_id in data.experiments["experiment_id"]:
        assert text.count(f'"{experiment_id}"') == 1, experiment_id


def laid_out_ids(spec: dict, entry: str) -> list[str]:
    """The id column top to bottom as Vega lays it out with ``entry`` chosen in the select."""
    chosen = {**spec, "params": [{**spec["params"][0], "value": entry}]}
    mark = f"concat_{headers(spec).index('id')}_layer_1_marks"
    texts = [
        item
        for node in _marks(vl_convert.vegalite_to_scenegraph(chosen))
        if node.get("name") == mark
        for item in node["items"]
    ]
    return [item["text"] for item in sorted(texts, key=lambda item: item["y"])]


def _marks(node: object):
    """Every dict in a scenegraph, depth first."""
    if isinstance(node, dict):
        yield node
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            yield from _marks(child)


@pytest.mark.parametrize("metric", ["output_tokens_per_s", "energy_per_output_token_j", "ttft_p90_s"])
def test_each_entry_orders_the_rows_best_first_missing_last(spec, data, metric):
    label, lower_is_better = METRICS[metric].label, METRICS[metric].lower_is_better
    entry = f"{label}, {'lowest' if lower_is_better else 'highest'} first"
    table = data.experiments
    ranked = table.sort_values(f"{metric}.mean", ascending=lower_is_better, na_position="last")
    assert laid_out_ids(spec, entry) == ranked["experiment_id"].tolist()
    assert laid_out_ids(spec, "run order") == table["experiment_id"].tolist()


@needs_chromium
def test_choosing_an_order_in_the_browser_sorts_the_table(study, data, tmp_path):
    completed = data.experiments[data.experiments["status"] == "completed"]
    first = completed["experiment_id"].iloc[0]
    best = completed.sort_values("output_tokens_per_s.mean", ascending=False)["experiment_id"].iloc[0]
    assert first != best
    report = build_report([study], output=tmp_path / "report.html")
    choose = (  # what a reader's choice does (test-only script): once vega-embed has bound the select
        "<script>(function choose() { var select = document.querySelector('#experiments select');"
        "if (!select) { return setTimeout(choose, 100); }"
        f"select.value = {json.dumps(THROUGHPUT_ENTRY)}; select.dispatchEvent(new Event('change')); }})();"
        "</script></body>"
    )
    chosen = tmp_path / "chosen.html"
    page, _, rest = report.read_text().rpartition("</body>")  # the last: vega's bundle holds the string too
    chosen.write_text(page + choose + rest)
    rendered = render(chosen, tmp_path / "chosen.png")
    assert rendered.console == [], rendered.console
    table = re.search(r'id="experiments".*?id="pareto"', rendered.dom, re.S).group(0)
    assert f"{THROUGHPUT_ENTRY}</option>" in table

    def row_y(experiment_id: str) -> float:
        match = re.search(rf'transform="translate\([\d.]+,([\d.]+)\)"[^>]*>{experiment_id}</text>', table)
        assert match, experiment_id
        return float(match.group(1))

    assert row_y(best) < row_y(first)
