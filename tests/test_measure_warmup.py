"""Warm-up: fixed mode on real prompts in full batches at full output length; CV mode's stopping rule."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import pytest

from llem.config.load import load_experiment
from llem.datasets import Prompt, load_prompts
from llem.engines import create_engine
from llem.measure import converge, run_warmup
from llem.progress import Progress
from llem.results.schema import Warmup


def experiment(**overrides):
    data = {"model": "llem-tiny", "max_output_tokens": 6, "transformers": {"batch_size": 2}, **overrides}
    return load_experiment(data)


def first_greedy_token(prompt: Prompt) -> int:
    """The token the tiny model generates first for ``prompt`` (made its EOS below)."""
    probe = create_engine(experiment(decoder={"preset": "deterministic"}))
    probe.load()
    enc = probe._tokenizer(prompt.text, return_tensors="pt")
    return int(probe._model.generate(**enc, max_new_tokens=1, do_sample=False)[0, -1])


def test_fixed_warmup_runs_full_batches_at_full_output_length(tiny_model_path):
    base = experiment()
    probe = create_engine(base)
    probe.load()
    prompts = load_prompts(base.dataset, random_seed=base.random_seed, tokenizer=probe.tokenizer())
    # Make the first generated token an EOS: a plain run stops after it, the warm-up must not.
    eos = first_greedy_token(prompts[0])
    cfg = experiment(
        warmup={"n_warmup": 3}, decoder={"preset": "deterministic"}, passthrough_kwargs={"eos_token_id": eos}
    )
    engine = create_engine(cfg)
    engine.load()
    assert engine.generate(prompts[:1]).requests[0].output_tokens == 1
    runs = []
    generate = engine.generate
    engine.generate = lambda prompts, progress=None: runs.append(generate(prompts, progress)) or runs[-1]
    record = run_warmup(cfg, engine, prompts)
    assert record == Warmup(
        enabled=True,
        mode="fixed",
        n_warmup=3,
        prompts=4,  # rounded up to whole batches of 2
        batches=2,
        batch_size=2,
        output_tokens_per_prompt=6,
    )
    (run,) = runs
    assert [b.size for b in run.batches] == [2, 2]
    assert all(r.output_tokens == 6 for r in run.requests)  # EOS cannot cut a warm-up prompt short
    assert all(r.input_tokens > 1 for r in run.requests)  # real prompts, not one short token


def fake_generate(latencies_s: list[float]):
    """A generate whose successive calls take the given wall times (the CV rule only sees time)."""
    calls = iter(latencies_s)

    def generate(chunk: list[Prompt]) -> None:
        time.sleep(next(calls))

    return generate


PROMPTS = [Prompt(f"prompt {i}") for i in range(10)]


def test_cv_mode_converges_once_the_window_is_steady():
    cfg = experiment(warmup={"convergence_detection": True, "window_size": 3, "min_prompts": 4, "cv_threshold": 0.1})
    record = converge(fake_generate([0.30, 0.05, 0.10, 0.10, 0.10, 0.10, 0.10]), PROMPTS, 1, cfg)
    assert record.mode == "convergence" and record.converged is True
    assert record.iterations == 5 and record.prompts == 5  # window [.1,.1,.1] first steady at call 5
    assert record.final_cv < 0.1


def test_cv_mode_reports_each_batch_with_its_cv(caplog):
    caplog.set_level(logging.INFO)
    cfg = experiment(warmup={"convergence_detection": True, "window_size": 2, "min_prompts": 2, "max_prompts": 6})
    ticks = iter(range(0, 1000, 60))  # each reading of the clock a minute later: every batch is reported
    progress = Progress("warm-up", 6, at_most=True, live=False, clock=lambda: float(next(ticks)))
    converge(fake_generate([0.02, 0.2] * 3), PROMPTS, 2, cfg, progress)
    first, second = [r.getMessage() for r in caplog.records if r.name == "llem.progress"]  # the 3rd is finish()'s
    assert first.startswith("warm-up: 2 prompts (at most 6), elapsed 0:01:00") and "CV" not in first
    assert second.startswith("warm-up: 4 prompts (at most 6), elapsed 0:02:00, ETA at most 0:01:00, latency CV 1.")


def test_cv_mode_stops_at_max_prompts_unconverged():
    cfg = experiment(warmup={"convergence_detection": True, "window_size": 2, "min_prompts": 2, "max_prompts": 6})
    record = converge(fake_generate([0.02, 0.2] * 3), PROMPTS, 2, cfg)
    assert record.converged is False and record.iterations == 3 and record.prompts == 6
    assert record.final_cv > 0.5


def test_cv_mode_end_to_end_records_its_fields(tiny_model_path, tmp_path):
    args = [
        "model=llem-tiny",
        "energy_sampler=null",
        "dataset.n_prompts=2",
        "max_output_tokens=4",
        "warmup.convergence_detection=true",
        "warmup.window_size=3",
        "warmup.min_prompts=3",
        "warmup.max_prompts=8",
        "warmup.cv_threshold=0.5",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    proc = subprocess.run([sys.executable, "-m", "llem", *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    warmup = json.loads((tmp_path / "run" / "result.json").read_text())["warmup"]
    assert warmup["mode"] == "convergence" and 3 <= warmup["iterations"] <= 8
    assert warmup["prompts"] == warmup["iterations"]  # batch size 1
    assert f"warm-up: {warmup['prompts']} prompts (at most 8), took" in proc.stderr  # its progress, exact
    assert isinstance(warmup["converged"], bool) and warmup["final_cv"] >= 0
    if warmup["converged"]:
        assert warmup["final_cv"] < 0.5
    else:
        assert warmup["iterations"] == 8


@pytest.mark.parametrize("profile", ["quick", "publication"])
def test_profiles_set_warmup_baseline_and_floor_together(profile):
    from hydra import compose, initialize_config_module

    from llem.config.store import register_configs

    register_configs()
    with initialize_config_module(config_module="llem.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"profile={profile}"])
    if profile == "quick":
        assert (cfg.warmup.n_warmup, cfg.warmup.thermal_floor_seconds, cfg.baseline.duration_seconds) == (2, 0.0, 5.0)
    else:
        assert (cfg.warmup.n_warmup, cfg.warmup.thermal_floor_seconds, cfg.baseline.duration_seconds) == (5, 60.0, 30.0)
        assert cfg.baseline.strategy == "fresh" and cfg.warmup.convergence_detection is False
