"""Progress inside a run: throttled lines with counts, rate and ETA; live lines for a terminal; job lines."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
from hydra.types import RunMode

from llem.progress import (
    LIVE_LOGGER,
    LOGGER,
    Cadence,
    Progress,
    TerminalEcho,
    Throttle,
    duration_text,
    is_live_line,
    worker_environment,
)
from llem.runners.supervise import Supervisor


class FakeClock:
    """A clock the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture, logger: str = LOGGER) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


def test_throttle_writes_every_tenth_and_at_least_every_30_s_but_never_twice_in_5_s():
    throttle = Throttle(Cadence(every_s=30.0, step=0.10, min_gap_s=5.0), now=0.0)
    assert not throttle.due(4.9, 0.5)  # half done, but within the minimum gap
    assert throttle.due(5.0, 0.5)
    assert not throttle.due(20.0, 0.55)  # 5% more, 15 s later: not yet
    assert throttle.due(20.0, 0.60)  # another 10%
    assert not throttle.due(49.9, 0.61)
    assert throttle.due(50.0, 0.61)  # 30 s without a line


def test_progress_lines_are_throttled_and_the_last_waits_for_finish(caplog):
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    progress = Progress("measuring", 100, live=False, clock=clock)
    for done in range(1, 101):  # one prompt a second
        clock.now += 1.0
        progress.update(done, tokens=done * 8)
    written = lines(caplog)
    assert len(written) == 9  # at 10%, 20%, ... 90% (10 s apart); 100% is left to finish()
    assert written[0] == (
        "measuring: 10/100 prompts (10%), elapsed 10.0 s, ETA 0:01:30, 80 tokens, 1.00 prompts/s, 8.00 tokens/s"
    )
    assert written[-1].startswith("measuring: 90/100 prompts (90%)")
    progress.finish()
    assert lines(caplog)[-1] == (
        "measuring: 100/100 prompts (100%), took 0:01:40, 800 tokens, 1.00 prompts/s, 8.00 tokens/s"
    )


def test_one_long_batch_reports_its_decoding_steps_every_30_s(caplog):
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    progress = Progress("measuring", 10, live=False, clock=clock)
    for step in range(1, 513):  # 10 prompts in one batch, 512 steps of 1 s: 1% a minute
        clock.now += 1.0
        progress.update(0, 0, fraction=step / 512, batch=(1, 1), step=(step, 512))
    written = lines(caplog)
    assert len(written) == 17  # 512 s without 10% steps between: one line per 30 s
    assert written[0] == "measuring: 0/10 prompts (6%), elapsed 30.0 s, ETA 0:08:02, batch 1/1 step 30/512"


def test_live_lines_come_once_a_second_between_log_lines(caplog):
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    progress = Progress("warm-up", 1000, live=True, clock=clock)
    for done in range(1, 41):  # 4 prompts a second for 10 s
        clock.now += 0.25
        progress.update(done)
    assert len(lines(caplog, LIVE_LOGGER)) == 10 and lines(caplog) == []


def test_a_convergence_warmup_says_at_most(caplog):
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    progress = Progress("warm-up", 50, at_most=True, live=False, clock=clock)
    clock.now += 6.0
    progress.update(10, note="latency CV 0.120")
    assert lines(caplog) == [
        "warm-up: 10 prompts (at most 50), elapsed 6.0 s, ETA at most 24.0 s, latency CV 0.120, 1.67 prompts/s"
    ]


def test_durations_read_as_seconds_then_clock_time():
    assert duration_text(7.25) == "7.2 s" and duration_text(61) == "0:01:01" and duration_text(3725) == "1:02:05"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_shows_live_lines_in_place_and_the_rest_as_they_come():
    screen = Terminal()
    echo = TerminalEcho(screen)
    echo.write(f"2026-01-01 00:00:00,000 INFO {LIVE_LOGGER}: measuring: 1/4 prompts (25%)\n")
    echo.write(f"2026-01-01 00:00:01,000 INFO {LIVE_LOGGER}: measuring: 2/4 prompts (50%)\n")
    echo.write(f"2026-01-01 00:00:02,000 INFO {LOGGER}: measuring: 4/4 prompts (100%)\n")
    shown = screen.getvalue()
    assert "measuring: 1/4 prompts (25%)" in shown and "measuring: 2/4 prompts (50%)" in shown
    assert f"{LIVE_LOGGER}:" not in shown  # the live line shows the message only
    assert shown.endswith(f"2026-01-01 00:00:02,000 INFO {LOGGER}: measuring: 4/4 prompts (100%)\n")
    assert worker_environment(screen) == {"LLEM_PROGRESS": "live"}
    assert worker_environment(io.StringIO()) == {"LLEM_PROGRESS": "log"}


def test_live_lines_stay_out_of_the_worker_log(tmp_path):
    code = (
        f"print('x INFO {LIVE_LOGGER}: measuring: 1/2 prompts'); "
        f"print('x INFO {LOGGER}: measuring: 2/2 prompts (100%)')"
    )
    log = tmp_path / "worker.log"
    Supervisor([sys.executable, "-c", code], log, echo=None).run()
    kept = log.read_text().splitlines()
    assert kept == [f"x INFO {LOGGER}: measuring: 2/2 prompts (100%)"]
    assert not any(is_live_line(line) for line in kept)


def test_the_transformers_engine_reports_each_step_and_each_batch(tiny_model_path, caplog):
    from llem.config.load import load_experiment
    from llem.datasets import load_prompts
    from llem.engines import create_engine
    from llem.measure import full_length

    caplog.set_level(logging.INFO)
    cfg = load_experiment(
        {"model": "llem-tiny", "max_output_tokens": 3, "dataset": {"n_prompts": 4}, "transformers": {"batch_size": 2}}
    )
    engine = create_engine(cfg)
    engine.load()
    prompts = full_length(cfg, load_prompts(cfg.dataset, random_seed=cfg.random_seed, tokenizer=engine.tokenizer()))
    clock = FakeClock()

    def minute_later() -> float:  # every update comes a minute after the one before: each is written
        clock.now += 60.0
        return clock.now

    progress = Progress("measuring", 4, live=False, clock=minute_later)
    run = engine.generate(prompts, progress)
    progress.finish()
    assert [r.output_tokens for r in run.requests] == [3, 3, 3, 3]
    assert lines(caplog) == [
        "measuring: 0/4 prompts (17%), elapsed 0:01:00, ETA 0:05:00, batch 1/2 step 1/3",
        "measuring: 0/4 prompts (33%), elapsed 0:02:00, ETA 0:04:00, batch 1/2 step 2/3",
        "measuring: 0/4 prompts (50%), elapsed 0:03:00, ETA 0:03:00, batch 1/2 step 3/3",
        "measuring: 2/4 prompts (50%), elapsed 0:04:00, ETA 0:04:00, batch 1/2, 6 tokens, 0.00833 prompts/s, "
        "0.0250 tokens/s",
        "measuring: 2/4 prompts (67%), elapsed 0:05:00, ETA 0:02:30, batch 2/2 step 1/3, 6 tokens, 0.00667 prompts/s, "
        "0.0200 tokens/s",
        "measuring: 2/4 prompts (83%), elapsed 0:06:00, ETA 0:01:12, batch 2/2 step 2/3, 6 tokens, 0.00556 prompts/s, "
        "0.0167 tokens/s",
        "measuring: 2/4 prompts (100%), elapsed 0:07:00, batch 2/2 step 3/3, 6 tokens, 0.00476 prompts/s, "
        "0.0143 tokens/s",
        "measuring: 4/4 prompts (100%), took 0:08:00, 12 tokens, 0.00833 prompts/s, 0.0250 tokens/s",
    ]


def test_token_budget_progress_counts_finished_requests_and_credits_their_whole_budget():
    from llem.engines.common import BudgetTracker

    progress = Progress("measuring", 2, live=False)
    tracker = BudgetTracker(progress, {"0": 10, "1": 10})
    tracker.add("0", 1)
    tracker.add("1", 1)
    tracker.report()
    assert (progress.done, progress.tokens, progress.fraction) == (0, 2, 0.1)
    tracker.add("0", 1, finished=True)  # EOS after 2 of its 10 tokens: counts as whole
    tracker.add("1", 4)
    tracker.report()
    assert (progress.done, progress.tokens, progress.fraction) == (1, 7, 0.75)
    unbounded = BudgetTracker(progress, {"0": 10, "1": None})  # no maximum: prompts done is all there is
    unbounded.add("0", 3, finished=True)
    unbounded.report()
    assert (progress.done, progress.tokens, progress.fraction) == (1, 3, 0.5)


def test_a_sweep_names_its_jobs_and_shows_exact_progress(tiny_model_path, tmp_path):
    """A real -m sweep of two jobs, its output captured (not a terminal): log lines, counts exact."""
    args = [
        "model=llem-tiny",
        "energy_sampler=null",
        "dataset.n_prompts=4",
        "max_output_tokens=4",
        "profile=quick",
        "transformers.batch_size=2",
        "warmup.n_warmup=3",
        "dtype=float32,bfloat16",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        "-m",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "llem", *args], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stderr
    assert "job 1/2: model=llem-tiny" in out and "job 2/2: model=llem-tiny" in out and "dtype=bfloat16" in out
    assert out.count("warm-up: 4/4 prompts (100%), took") == 2  # 3 warm-up prompts, rounded up to 2 batches
    assert LIVE_LOGGER not in out
    for job in ("0", "1"):
        result = json.loads((tmp_path / "sweep" / job / "result.json").read_text())
        log = (tmp_path / "sweep" / job / "worker.log").read_text()
        (last,) = re.findall(r"measuring: 4/4 prompts \(100%\), took [^,]+, (\d+) tokens", log)
        assert int(last) == result["tokens"]["output_tokens"]
    # the sweep's end: its experiments ranked, and a report written beside the summary tables
    report = tmp_path / "sweep" / "report.html"
    assert "experiments by output tokens per second" in proc.stdout and f"report: {report}" in proc.stdout
    assert report.stat().st_size > 0 and (tmp_path / "sweep" / "summary.csv").exists()


def test_a_single_run_is_named_by_its_overrides():
    from llem.app import _job_title

    assert _job_title(SimpleNamespace(mode=RunMode.RUN)) == "run"


def test_a_sweep_job_without_multirun_yaml_has_no_total(tmp_path):
    from llem.app import _job_title

    hc = SimpleNamespace(mode=RunMode.MULTIRUN, job=SimpleNamespace(num=2), sweep=SimpleNamespace(dir=str(tmp_path)))
    assert _job_title(hc) == "job 3"
