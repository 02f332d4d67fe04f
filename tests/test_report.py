"""llem.report: report.html of studies, sweeps and single runs (fake result folders), read back as text."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from llem.errors import LlemError
from llem.report import build_report, charts, page, runs, tables, write_report_quietly
from llem.report.data import load_report_data
from llem.report.warnings_panel import warning_kind
from llem.results.collect import load_runs
from tests.fakes.results_tree import make_single_run, make_study, make_sweep

FACTORS = {"dtype": ["float16", "bfloat16"], "transformers.batch_size": [1, 4]}
SECTION_IDS = ("header", "experiments", "pareto", "effects", "significance", "runs", "warnings")
BUNDLE = "window.vegaEmbed="  # where the inline vega-embed bundle defines what each chart calls
EMBED = "vegaEmbed('#chart-"  # one call per chart


def section(html: str, name: str) -> str:
    """The text of ``<section id=name>`` (the header for ``header``)."""
    tag = "header" if name == "header" else "section"
    match = re.search(f"<{tag} id='{name}'>(.*?)</{tag}>", html, re.S)
    assert match, f"no {name} section"
    return re.sub(r"\\u([0-9a-f]{4})", lambda m: chr(int(m.group(1), 16)), match.group(1))  # "<" in the specs


def specs(html: str) -> list[dict]:
    """The Vega-Lite spec of each chart in ``html``, in page order."""
    starts = [m.end() for m in re.finditer(r"vegaEmbed\('#chart-\d+', ", html)]
    return [json.JSONDecoder().raw_decode(html, start)[0] for start in starts]


def rows(spec: object) -> list[dict]:
    """Every data row of a spec: its ``datasets`` (where Altair puts data frames) and inline ``values``."""
    if isinstance(spec, list):
        return [row for item in spec for row in rows(item)]
    if not isinstance(spec, dict):
        return []
    found = [row for values in spec.get("datasets", {}).values() for row in values]
    found += spec["values"] if isinstance(spec.get("values"), list) else []
    return found + [row for key, value in spec.items() if key not in ("datasets", "values") for row in rows(value)]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 x 2 factors x 3 cycles, one experiment failed in every cycle, telemetry in 2 runs."""
    return make_study(tmp_path_factory.mktemp("study"), factors=FACTORS, failed=[(3, None)], timeseries_runs=2)


@pytest.fixture(scope="module")
def study_html(study: Path) -> str:
    path = build_report([study])
    assert path == study / "report.html"
    return path.read_text()


def test_one_page_with_every_section_and_the_chart_library_inline_once(study_html):
    for name in SECTION_IDS:
        section(study_html, name)
    assert study_html.count(BUNDLE) == 1 and study_html.index(BUNDLE) < study_html.index(EMBED)
    assert not re.search(r"<script[^>]*\ssrc=", study_html)  # every script inline: opens offline
    # table, 3 fronts, 2 factors, 2 runs' telemetry
    assert study_html.count(EMBED) == len(specs(study_html)) == 1 + 3 + 2 + 2


def test_every_chart_is_valid_vega_lite(study):
    data = load_report_data([study])
    made = [
        tables.experiments_chart(data),
        *(charts.pareto_chart(data, x, y) for x, y in charts.pareto_pairs(data)),
        *(charts.effect_chart(data, f, charts.effect_metrics(data)) for f in data.factors),
        *(runs.telemetry_chart(result, path) for _, result, path in runs.series_runs(data)),
    ]
    assert len(made) == 1 + 3 + 2 + 2
    for chart in made:
        chart.to_dict(validate=True)  # raises where the Vega-Lite schema rejects the spec


def test_header_names_study_design_machine_engine_and_energy_method(study, study_html):
    header = section(study_html, "header")
    design = json.loads((study / "manifest.json").read_text())["study_design_hash"]
    for text in ("fake-study", design, "NVIDIA H100 80GB HBM3", "driver 550.54.15", "AMD EPYC", "transformers", "nvml"):
        assert text in header, text
    assert "class='notice'" not in header  # energy measured: nothing to warn about


def test_experiments_table_names_factors_and_gives_the_failure_reason(study_html):
    experiments = section(study_html, "experiments")
    (table,) = specs(experiments)
    headers = ["".join(view["title"]["text"]) for view in table["hconcat"]]
    assert "transformers.batch_size" in headers and "reason" in headers  # reason: only when one has a reason
    assert "energy / output token (mJ), lowest first" in table["params"][0]["bind"]["options"]
    assert "float16" in experiments
    assert "dtype=bfloat16, transformers.batch_size=4</b> (failed): OutOfMemoryError" in experiments


def test_fronts_of_energy_against_throughput_and_latency(study_html):
    fronts = specs(section(study_html, "pareto"))
    for axis, spec in zip(("output tok/s", "TTFT p90 (ms)", "ITL p50 (ms)"), fronts, strict=True):
        assert f'"title":"{axis}"' in json.dumps(spec, separators=(",", ":")), axis
        assert '"title":"energy / output token (mJ)"' in json.dumps(spec, separators=(",", ":"))
        sets = {row["set"] for row in rows(spec)}
        assert "Pareto front" in sets, sets


def test_significance_in_sentences_with_holm(study_html):
    significance = section(study_html, "significance")
    assert "Holm" in significance and "comparison(s)" in significance
    assert re.search(r"(lower|higher|no detectable difference)", significance)


def test_runs_show_telemetry_with_windows_and_warnings_are_grouped(study_html):
    runs = section(study_html, "runs")
    telemetry = specs(runs)
    assert len(telemetry) == 2 and "idle baseline" in runs
    assert all(any(row.get("band") == "measured" for row in rows(spec)) for spec in telemetry)
    warnings = section(study_html, "warnings")
    assert "<th>runs affected</th>" in warnings and "run(s) of " in warnings


def test_the_telemetry_plot_has_a_clocks_panel_left_out_for_files_without_clocks(study_html, tmp_path):
    runs = section(study_html, "runs")
    assert runs.count("clocks (MHz)") == 2
    assert runs.count('"fold":["SM clock","memory clock"]') == 2
    job = make_single_run(tmp_path)
    series = job / "timeseries.parquet"  # as written before the clock columns
    pd.read_parquet(series).drop(columns=["sm_clock_mhz", "memory_clock_mhz"]).to_parquet(series, index=False)
    runs = section(build_report([job]).read_text(), "runs")
    assert "power (W)" in runs and "clock" not in runs


def test_without_energy_fronts_are_throughput_against_latency_and_the_header_says_so(tmp_path):
    folder = make_study(tmp_path, factors=FACTORS, energy=False, timeseries_runs=0)
    html = build_report([folder]).read_text()
    assert "No energy figure in 12 of 12 runs: not measured" in section(html, "header")
    pareto = section(html, "pareto")
    assert "Energy was not measured, so the fronts are throughput against latency" in pareto
    assert '"reason"' not in section(html, "experiments")
    assert len(specs(pareto)) == 2 and all("Pareto front" in {r["set"] for r in rows(s)} for s in specs(pareto))
    assert "No run recorded a telemetry time series" in section(html, "runs")


def test_an_energy_estimate_is_stated_at_the_top(tmp_path):
    folder = make_study(tmp_path, factors={"dtype": ["float16", "bfloat16"]}, energy_estimated=True, cycles=2)
    assert "is an estimate (" in section(build_report([folder]).read_text(), "header")


def test_one_cycle_says_no_test_is_possible(tmp_path):
    folder = make_study(tmp_path, factors=FACTORS, cycles=1)
    assert "No test is possible: every experiment has fewer than 2 completed cycles" in section(
        build_report([folder]).read_text(), "significance"
    )


def test_a_study_and_a_sweep_together_go_to_the_current_folder(tmp_path, monkeypatch):
    study = make_study(tmp_path / "a", factors=FACTORS, name="first")
    sweep = make_sweep(tmp_path / "b", factors={"dtype": ["float16", "bfloat16"]})
    monkeypatch.chdir(tmp_path)
    path = build_report([study, sweep])
    assert path == tmp_path / "report.html"
    html = path.read_text()
    assert "llem report: first vs " in html and "first: dtype=float16" in html
    assert html.count(BUNDLE) == 1


def test_single_run_has_no_factor_and_a_named_baseline_must_exist(tmp_path):
    run = make_single_run(tmp_path)
    assert build_report([run], output=tmp_path / "new" / "out.html") == tmp_path / "new" / "out.html"
    assert build_report([run], output=tmp_path / "new") == tmp_path / "new" / "report.html"
    html = build_report([run], output=tmp_path / "out.html").read_text()
    assert "No configuration key varies" in section(html, "effects")
    with pytest.raises(LlemError, match="--baseline nope: no experiment has that id"):
        build_report([run], output=tmp_path / "out.html", baseline="nope")


def test_a_baseline_is_compared_with_every_experiment(study):
    runs = load_runs(study)
    chosen = runs[(runs["config.dtype"] == "float16") & (runs["config.transformers.batch_size"] == 4)]
    baseline = chosen["experiment_id"].iloc[0]  # differs from dtype=bfloat16, batch_size=1 in both factors
    html = build_report([study], output=study / "baseline.html", baseline=baseline).read_text()
    assert "<td>(baseline)</td>" in section(html, "significance")


def test_a_study_whose_runs_all_failed_says_so_in_every_section(tmp_path):
    folder = make_study(tmp_path, factors={"dtype": ["float16", "bfloat16"]}, failed=[(0, None), (1, None)])
    html = build_report([folder]).read_text()
    assert "transformers" in section(html, "header")
    assert "2 experiment(s) without a completed run" in section(html, "experiments")
    assert "no front to draw" in section(html, "pareto")
    assert "No completed run" in section(html, "effects") and "No completed run" in section(html, "significance")
    assert "0 of 6 run(s) completed" in section(html, "runs") and "OutOfMemoryError" in section(html, "runs")
    assert html.count(EMBED) == 1  # the table alone


def test_a_failed_report_is_one_warning_line(tmp_path):
    console = Console(record=True, width=200)
    assert write_report_quietly([tmp_path], console) is None
    text = console.export_text()
    assert text.startswith("llem: warning: no report written:") and "holds no llem results" in text
    assert text.count("\n") == 1


def test_warning_kinds_group_by_prefix_or_by_text_without_numbers():
    assert warning_kind("host busy: other processes used 67% of the usable CPUs' time") == "host busy"
    assert warning_kind("GPU 0 throttled (power) for 1.2 s in the window") == warning_kind(
        "GPU 1 throttled (power) for 13.0 s in the window"
    )


def test_a_completed_run_whose_result_cannot_be_read_is_listed_with_its_reason(study, tmp_path):
    copy = shutil.copytree(study, tmp_path / "fake-study" / "copy")
    runs = load_runs(copy)
    broken = runs[runs["status"] == "completed"].iloc[0]
    (Path(broken["job_dir"]) / "result.json").write_text('{"broken')
    html = build_report([copy]).read_text()
    listed = section(html, "runs")
    assert "8 of 12 run(s) completed with a readable result; 1 completed but their result.json cannot be read" in listed
    assert "(completed, result unreadable): " in listed and "result.json" in listed
    assert '"2/3"' in section(html, "experiments")


def test_two_folders_of_one_study_stay_apart(study, tmp_path):
    later = shutil.copytree(study, tmp_path / "fake-study" / "2026-03-03T09-00-00")
    data = load_report_data([study, later])
    assert data.experiments["key"].nunique() == len(data.experiments) == 8
    assert set(data.experiments["folder"]) == {f"fake-study/{study.name}", "fake-study/2026-03-03T09-00-00"}
    experiment = data.experiments["experiment_id"].iloc[0]
    with pytest.raises(LlemError, match=f"--baseline {experiment}: several experiments match it"):
        build_report([study, later], output=tmp_path / "r.html", baseline=experiment)
    key = f"fake-study/2026-03-03T09-00-00/{experiment}"
    html = build_report([study, later], output=tmp_path / "r.html", baseline=key).read_text()
    significance = section(html, "significance")
    assert "n = 3 and 3" in significance and "n = 6" not in significance  # cycles of one folder, not pooled


def test_an_unreadable_telemetry_file_is_named_and_the_report_still_written(tmp_path):
    damaged = make_single_run(tmp_path / "a")
    (damaged / "timeseries.parquet").write_bytes(b"not parquet")
    reshaped = make_single_run(tmp_path / "b")
    series = reshaped / "timeseries.parquet"
    pd.read_parquet(series).drop(columns=["gpu_index"]).to_parquet(series, index=False)
    for job, reason in ((damaged, "unreadable: "), (reshaped, "unreadable: no column 'gpu_index'")):
        html = build_report([job]).read_text()
        runs = section(html, "runs")
        assert f"<code>{job / 'timeseries.parquet'}</code> {reason}" in runs
        assert html.count(BUNDLE) == 1 and "id='warnings'" in html


def test_output_names_a_folder_unless_it_is_an_html_file_and_an_unwritable_one_is_one_error(tmp_path):
    run = make_single_run(tmp_path)
    assert build_report([run], output=f"{tmp_path / 'newdir'}/") == tmp_path / "newdir" / "report.html"
    assert build_report([run], output=tmp_path / "results") == tmp_path / "results" / "report.html"
    assert (tmp_path / "results" / "report.html").is_file()
    with pytest.raises(LlemError, match=r"^/proc/x.html: the report cannot be written .*give --output a writable"):
        build_report([run], output=Path("/proc/x.html"))


def test_a_baseline_without_a_completed_run_says_so(study):
    runs = load_runs(study)
    failed = runs.loc[runs["status"] == "failed", "experiment_id"].iloc[0]
    with pytest.raises(LlemError, match=f"--baseline {failed}: that experiment has no completed run"):
        build_report([study], output=study / "baseline.html", baseline=failed)


def test_no_text_in_a_chart_can_end_its_script(tmp_path):
    folder = make_study(tmp_path, factors={"dtype": ["float16", "bfloat16"]}, failed=[(1, None)])
    for written in [folder / "manifest.json", *folder.glob("*/status.json")]:  # the failure's reason
        written.write_text(written.read_text().replace("OutOfMemoryError", "</script><b>OutOfMemoryError"))
    html = build_report([folder]).read_text()
    assert "</script><b>" not in html and "OutOfMemoryError" in section(html, "experiments")
    assert html.count("</script>") == html.count("<script")  # each script ends where it should


def test_configurations_the_planner_refused_are_listed_with_their_reason(tmp_path):
    folder = make_study(tmp_path, factors={"dataset.n_prompts": [64, 256]}, cycles=2)
    experiments = section(build_report([folder]).read_text(), "experiments")
    assert "1 configuration(s) not run, refused when the study was planned" in experiments
    assert "<b>dataset.n_prompts=256</b>: dataset.n_prompts=256 but dataset.source=builtin has only" in experiments
    (folder / "skipped.json").write_text("{damaged")
    experiments = section(build_report([folder]).read_text(), "experiments")
    assert f"<b>{folder / 'skipped.json'}</b>: cannot be read: " in experiments


def test_hovering_a_front_point_names_its_configuration(study_html):
    front = specs(section(study_html, "pareto"))[0]
    (dots,) = [layer for layer in front["layer"] if "tooltip" in layer.get("encoding", {})]
    assert dots["encoding"]["tooltip"][0]["field"] == "experiment"
    assert {row["experiment"] for row in rows(front)} >= {"dtype=float16, transformers.batch_size=4"}


def telemetry_of(job: Path) -> dict:
    """The telemetry chart's spec of a single run's report."""
    (spec,) = specs(section(build_report([job]).read_text(), "runs"))
    return spec


def test_shaded_windows_stay_inside_the_drawn_series(tmp_path):
    job = make_single_run(tmp_path)
    series = job / "timeseries.parquet"
    table = pd.read_parquet(series)
    table.iloc[3:-3].to_parquet(series, index=False)  # begins after the window starts, ends before it ends
    spec = telemetry_of(job)
    last_s = max(row["t"] for row in spec["datasets"][spec["data"]["name"]])
    bands = [row for row in rows(spec) if "band" in row]
    assert bands and all(0 <= band["start"] < band["end"] <= last_s for band in bands)


def test_several_gpus_get_a_colour_each_and_a_long_series_is_thinned(tmp_path):
    job = make_single_run(tmp_path)
    series = job / "timeseries.parquet"
    one = pd.read_parquet(series)
    step = float(one["timestamp_s"].diff().median())
    long = pd.concat(  # 300 copies of the 15 samples, end to end: 4,500 samples per GPU
        [one.assign(timestamp_s=one["timestamp_s"] + i * len(one) * step) for i in range(300)], ignore_index=True
    )
    pd.concat([long, long.assign(gpu_index=1)], ignore_index=True).to_parquet(series, index=False)
    spec = telemetry_of(job)
    samples = spec["datasets"][spec["data"]["name"]]
    assert {row["gpu"] for row in samples} == {"GPU 0", "GPU 1"}
    assert len(samples) == 2 * 1500  # one sample in 3 of each GPU's 4,500
    text = json.dumps(spec)
    assert '"title": "seconds from ' in text and "(one sample in 3 drawn)" in text
    assert '"color": {"field": "gpu"' in text and '"fill": {"field": "colour"' in text


def test_a_series_without_readings_is_named_not_drawn_empty(tmp_path):
    job = make_single_run(tmp_path)
    series = job / "timeseries.parquet"
    table = pd.read_parquet(series)
    drawn = ["power_w", "temperature_c", "sm_utilisation_pct", "sm_clock_mhz", "memory_clock_mhz", "memory_used_mb"]
    table.assign(**{column: float("nan") for column in drawn}).to_parquet(series, index=False)
    runs = section(build_report([job]).read_text(), "runs")
    assert f"<code>{series}</code> unreadable: no reading of power_w" in runs and "vegaEmbed" not in runs


def test_effect_levels_keep_their_order_whatever_their_text(tmp_path):
    folder = make_study(tmp_path, factors={"transformers.batch_size": [16, 4, 1]}, cycles=2)
    (spec,) = specs(section(build_report([folder]).read_text(), "effects"))
    places = {row["level"]: row["place"] for row in rows(spec)}
    assert places == {"1": 0, "4": 1, "16": 2}  # by number, not as text
    assert spec["spec"]["layer"][0]["encoding"]["x"]["sort"] == {"field": "place", "op": "min"}


def test_the_bundle_is_cached_made_again_when_damaged_and_needs_a_vl_convert_that_knows_altairs_version(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("LLEM_CACHE_DIR", str(tmp_path / "cache"))
    page.vega_bundle.cache_clear()
    made = page.vega_bundle()
    (cached,) = (tmp_path / "cache" / "report").glob("vega-embed-*.js")
    assert cached.read_text() == made and page.BUNDLE_DEFINES in made
    for damage in (b"", b"\xff\xfe not UTF-8", made.encode()[: len(made) // 2]):
        cached.write_bytes(damage)
        page.vega_bundle.cache_clear()
        assert page.vega_bundle() == made and cached.read_text() == made
    monkeypatch.setenv("LLEM_CACHE_DIR", str(cached))  # a file where the cache folder should be: made, not kept
    page.vega_bundle.cache_clear()
    assert page.vega_bundle() == made
    monkeypatch.setattr(page.vl_convert, "get_vegalite_versions", lambda: ["5.8"])
    page.vega_bundle.cache_clear()
    with pytest.raises(LlemError, match=r"^vl-convert-python .* cannot make the report's script for Vega-Lite "):
        page.vega_bundle()
    page.vega_bundle.cache_clear()


def test_a_wrong_path_is_refused_before_the_bundle_is_made(tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr("llem.report.build.vega_bundle", lambda: made.append(1) or "")
    with pytest.raises(LlemError, match="no such folder"):
        build_report([tmp_path / "nope"])
    assert made == []


@pytest.mark.parametrize(
    "written",
    ['{"overrides": ["a=1"], "reason": "r"}', '[{"overrides": [1, 2], "reason": "r"}]', '[{"overrides": "a=1"}]'],
)
def test_a_skipped_file_of_another_shape_is_one_line_and_the_report_is_written(tmp_path, written):
    folder = make_study(tmp_path, factors={"dtype": ["float16", "bfloat16"]}, cycles=2)
    (folder / "skipped.json").write_text(written)
    experiments = section(build_report([folder]).read_text(), "experiments")
    assert f"<b>{folder / 'skipped.json'}</b>: damaged: not a list of" in experiments


def test_two_folders_of_one_study_name_their_refused_configurations_apart(tmp_path):
    first = make_study(tmp_path, factors={"dataset.n_prompts": [64, 256]}, cycles=2)
    second = shutil.copytree(first, first.parent / "2026-03-03T09-00-00")
    experiments = section(build_report([first, second], output=tmp_path / "r.html").read_text(), "experiments")
    for folder in (first, second):
        assert f"<b>fake-study/{folder.name}: dataset.n_prompts=256</b>" in experiments


def test_a_factor_one_folder_lacks_puts_no_point_at_a_null_level(tmp_path):
    study = make_study(tmp_path / "a", factors=FACTORS, name="first")
    sweep = make_sweep(tmp_path / "b", factors={"dtype": ["float16", "bfloat16"]})
    html = build_report([study, sweep], output=tmp_path / "r.html").read_text()
    batch_size = next(
        s
        for s in specs(section(html, "effects"))
        if s["spec"]["layer"][0]["encoding"]["x"]["title"] == "transformers.batch_size"
    )
    assert {row["level"] for row in rows(batch_size)} == {"1", "4"}
    assert all("<NA>" not in row["line"] and "nan" not in row["line"] for row in rows(batch_size))
