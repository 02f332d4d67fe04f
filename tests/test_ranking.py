"""The ranked table of experiments printed at the end of a study, a sweep and by llem summarize."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from llem.results.collect import load_runs
from llem.results.ranking import describe, print_ranking, ranked, source_labels, varying_factors
from llem.results.summary import aggregate
from tests.fakes.results_tree import make_single_run, make_study, make_sweep

FACTORS = {"dtype": ["float32", "bfloat16"], "transformers.batch_size": [1, 4]}


def printed(experiments, **kwargs) -> str:
    console = Console(record=True, width=250)
    print_ranking(experiments, console, **kwargs)
    return console.export_text()


def test_experiments_rank_by_energy_per_token_with_factors_by_name(tmp_path):
    effects = {"dtype": {"bfloat16": 0.5}, "transformers.batch_size": {4: 0.8}}
    folder = make_study(tmp_path, factors=FACTORS, cycles=3, effects=effects, spread=0.0, failed=[(0, None)])
    experiments = aggregate(load_runs(folder))
    text = printed(experiments, report=Path("/x/report.html"))
    lines = text.splitlines()
    assert "experiments by energy per output token" in lines[0]
    header = next(line for line in lines if line.startswith("┃") and "dtype" in line)
    assert "batch_size" in header and "transformers." not in header  # its last key: narrow enough for 80 columns
    assert "energy/token mJ" in header and "output tok/s" in header
    body = [line for line in lines if line.startswith("│")]
    order = [(line.split("│")[3].strip(), line.split("│")[4].strip()) for line in body]
    assert order == [("bfloat16", "4"), ("bfloat16", "1"), ("float32", "4")]  # energy x0.4, x0.5, x0.8
    assert "failed: dtype=float32 transformers.batch_size=1" in text and "out of memory" in text.lower()
    assert lines[-1] == "report: /x/report.html"
    best = ranked(experiments).iloc[0]
    assert describe(best, varying_factors(experiments)) == "dtype=bfloat16 transformers.batch_size=4"
    low, mean, high = (best[f"energy_per_output_token_j.{k}"] * 1e3 for k in ("ci95_low", "mean", "ci95_high"))
    assert f"{mean:.3g} ({low:.3g}–{high:.3g})" in body[0]


def test_without_energy_the_ranking_is_by_throughput(tmp_path):
    folder = make_sweep(tmp_path, factors={"dtype": ["float32", "bfloat16"]}, energy=False)
    experiments = aggregate(load_runs(folder))
    text = printed(experiments)
    assert "experiments by output tokens per second" in text and "energy not measured" in text
    assert "energy/token" not in text and "report:" not in text
    means = ranked(experiments)["output_tokens_per_s.mean"].tolist()
    assert means == sorted(means, reverse=True)


def test_estimated_energy_is_said_and_several_sources_show_their_study(tmp_path):
    study = make_study(tmp_path / "a", factors={"dtype": ["float32"]}, cycles=2, energy_estimated=True)
    run = make_single_run(tmp_path / "b")
    text = printed(aggregate(load_runs([study, run])))
    assert "is an estimate (codecarbon-estimate), not a measurement" in text
    header = next(line for line in text.splitlines() if line.startswith("┃") and "experiment" in line)
    assert header.split("┃")[2].strip() == "study" and "fake-study" in text


def test_one_cycle_shows_the_mean_alone_and_many_experiments_are_counted(tmp_path):
    folder = make_study(tmp_path, factors={"transformers.batch_size": list(range(1, 26))}, cycles=1)
    text = printed(aggregate(load_runs(folder)))
    assert "... 5 more completed experiments not shown" in text
    assert "(" not in text.split("┩")[1].split("└")[0]  # no interval from one cycle


def test_two_runs_of_one_study_are_told_apart(tmp_path):
    first = make_study(tmp_path / "a", factors={"dtype": ["float32"]}, cycles=1)
    second = make_study(tmp_path / "b", factors={"dtype": ["float32"]}, cycles=1)
    experiments = aggregate(load_runs([first, second]))
    assert source_labels(experiments) == {str(first): str(first), str(second): str(second)}
    assert source_labels(experiments.assign(study=["x", "y"])) == {str(first): "x", str(second): "y"}
    renamed = experiments.assign(source=[str(first), str(tmp_path / "c" / "fake-study" / "2026-03-03")])
    assert set(source_labels(renamed).values()) == {"fake-study/2026-03-02T09-00-00", "fake-study/2026-03-03"}
    assert str(second) in printed(experiments)


def test_a_completed_experiment_without_the_ranking_figure_is_listed_unranked(tmp_path):
    folder = make_study(tmp_path, factors={"dtype": ["float32", "bfloat16", "float16"]}, cycles=1)
    experiments = aggregate(load_runs(folder))
    experiments.loc[0, "energy_per_output_token_j.mean"] = float("nan")
    text = printed(experiments)
    ranks = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│")]
    assert ranks == ["1", "2", "-"]
    assert "- not ranked: 1 completed experiment(s) without energy per output token" in text


def test_nothing_completed_says_so_instead_of_blaming_energy(tmp_path):
    folder = make_study(tmp_path, factors={"dtype": ["float32", "bfloat16"]}, cycles=1, failed=[(0, None), (1, None)])
    text = printed(aggregate(load_runs(folder)))
    assert "no run completed with a readable result: nothing to rank" in text
    assert "energy not measured" not in text


def test_mixed_peak_memory_scopes_are_said(tmp_path):
    gpu = make_study(tmp_path / "a", factors={"dtype": ["float32"]}, cycles=1)
    cpu = make_single_run(tmp_path / "b", energy=False)  # a model on the CPU: the host's peak
    experiments = aggregate(load_runs([gpu, cpu]))
    assert set(experiments["peak_memory_scope"]) == {"cuda peak allocated", "peak rss"}
    assert "peak MiB mixes scopes: cuda peak allocated, peak rss" in printed(experiments)
    assert "mixes scopes" not in printed(experiments.iloc[:1])


def test_a_factor_heading_is_its_last_key_unless_two_share_it():
    from llem.results.ranking import _headings

    factors = ["config.dtype", "config.transformers.batch_size", "config.vllm.sampling.n", "config.decoder.n"]
    assert _headings(factors) == ["dtype", "batch_size", "vllm.sampling.n", "decoder.n"]


def test_a_log_or_pipe_gets_one_line_per_experiment_and_a_terminal_its_width(tmp_path):
    experiments = aggregate(load_runs(make_study(tmp_path, factors=FACTORS, cycles=3)))
    for is_terminal, rows in ((False, 4), (True, 8)):  # at 60 columns a terminal's rows wrap onto a second line
        console = Console(record=True, width=60, force_terminal=is_terminal, color_system=None)
        print_ranking(experiments, console)
        body = [line for line in console.export_text().splitlines() if line.startswith("│")]
        assert len(body) >= rows and (is_terminal or len(body) == rows), body
        assert console.width == 60  # restored
