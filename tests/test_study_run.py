"""Real studies on the tiny built-in model: basic and submitit_local launchers, failures, resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

SMALL = {
    "model": "llem-tiny",
    "max_output_tokens": 4,
    "dataset": {"n_prompts": 2},
    "warmup": {"n_warmup": 1, "thermal_floor_seconds": 0},
    "baseline": {"duration_seconds": 5},
    "energy_sampler": None,
}


def write_study(folder: Path, **study) -> Path:
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump({"name": "s", **SMALL, **study}))
    return path


def llem(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llem.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600, **kwargs
    )


def manifest_of(study_dir: Path) -> dict:
    return json.loads((study_dir / "manifest.json").read_text())


def only_study_dir(root: Path) -> Path:
    (found,) = [p.parent for p in root.glob("*/manifest.json")]
    return found


def test_study_runs_in_order_with_stable_job_dirs(tiny_model_path, tmp_path):
    study = write_study(
        tmp_path,
        sweep={"dtype": ["float32", "bfloat16"]},
        study_execution={"n_cycles": 2, "experiment_order": "interleave"},
    )
    proc = llem("run", str(study), "--output", str(tmp_path / "out"), "-v", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = only_study_dir(tmp_path / "out")
    manifest = manifest_of(folder)
    assert manifest["status"] == "completed" and manifest["counts"] == {"completed": 4}
    runs = manifest["runs"]
    assert [r["cycle"] for r in runs] == [0, 0, 1, 1]
    assert runs[0]["experiment_id"] == runs[2]["experiment_id"] != runs[1]["experiment_id"]
    for run in runs:
        job = folder / run["job_dir"]
        assert job.name == f"{run['position']:04d}_{run['experiment_id']}_c{run['cycle']}"
        result = json.loads((job / "result.json").read_text())
        experiment = json.loads((job / "experiment.json").read_text())
        assert experiment["study_run"]["position"] == run["position"]
        assert result["config_hash"].startswith(run["experiment_id"])
    for name in ("study.yaml", "study_plan.json", "hydra_command.txt", "skipped.json"):
        assert (folder / name).exists(), name
    assert "hydra/sweeper=llem" in (folder / "hydra_command.txt").read_text()
    assert "Study complete: 4/4 ran, 0 failed" in proc.stdout


def test_plan_json_matches_what_runs(tiny_model_path, tmp_path):
    study = write_study(tmp_path, sweep={"dtype": ["float32", "bfloat16"]})
    plan = json.loads(llem("plan", str(study), "--json", cwd=tmp_path).stdout)
    assert plan["n_experiments"] == 2 and plan["n_runs"] == 6
    proc = llem("run", str(study), "--cycles", "1", "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = only_study_dir(tmp_path / "out")
    ran = {
        json.loads((folder / r["job_dir"] / "experiment.json").read_text())["config_hash"][:8]: r["job_dir"]
        for r in manifest_of(folder)["runs"]
    }
    planned = {r["experiment_id"]: r["config"] for r in plan["runs"]}
    for experiment_id, job_dir in ran.items():
        assert json.loads((folder / job_dir / "experiment.json").read_text())["config"] == planned[experiment_id]


def model_without_weights(tiny_model_path: str, tmp_path: Path) -> str:
    """llem-tiny's folder without its weights: it passes the pre-flight (config.json is there) and
    its job fails when the engine loads it."""
    folder = tmp_path / "no-weights"
    shutil.copytree(tiny_model_path, folder, ignore=shutil.ignore_patterns("*.safetensors"))
    return str(folder)


def test_failures_are_recorded_and_the_breaker_stops_the_study(tiny_model_path, tmp_path):
    no_weights = model_without_weights(tiny_model_path, tmp_path)
    study = write_study(
        tmp_path,
        experiments=[{"model": no_weights}, {"model": no_weights, "dataset": {"order": "shuffled"}}, {}],
        study_execution={"n_cycles": 1, "experiment_order": "sequential"},
    )
    proc = llem("run", str(study), "--output", str(tmp_path / "out"), "--fail-fast", cwd=tmp_path)
    assert proc.returncode == 1
    manifest = manifest_of(only_study_dir(tmp_path / "out"))
    assert manifest["status"] == "circuit_breaker"
    assert [r["status"] for r in manifest["runs"]] == ["failed", "skipped", "skipped"]
    assert no_weights in manifest["runs"][0]["error"]


def test_failed_run_does_not_stop_the_study(tiny_model_path, tmp_path):
    study = write_study(
        tmp_path,
        experiments=[{"model": model_without_weights(tiny_model_path, tmp_path)}, {}],
        study_execution={"n_cycles": 1, "experiment_order": "sequential"},
    )
    proc = llem("run", str(study), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 1
    assert [r["status"] for r in manifest_of(only_study_dir(tmp_path / "out"))["runs"]] == ["failed", "completed"]
    assert "1/2 ran, 1 failed" in proc.stdout


def test_submitit_local_launcher(tiny_model_path, tmp_path):
    study = write_study(tmp_path, sweep={"dtype": ["float32", "bfloat16"]})
    proc = llem(
        "run",
        str(study),
        "--cycles",
        "1",
        "--output",
        str(tmp_path / "out"),
        "hydra/launcher=llem_submitit_local",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folder = only_study_dir(tmp_path / "out")
    assert manifest_of(folder)["counts"] == {"completed": 2}
    assert (folder / ".submitit").is_dir(), "the jobs went through submitit"


def test_killed_study_resumes_without_losing_or_repeating_runs(tiny_model_path, tmp_path):
    study = write_study(tmp_path, sweep={"dtype": ["float32", "bfloat16"]}, study_execution={"n_cycles": 2})
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llem.cli", "run", str(study), "--output", str(out)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(out.glob("*/*/result.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    folder = only_study_dir(out)
    # A result written before the kill counts, even if the manifest had no time to say so.
    before = {r["position"]: r for r in manifest_of(folder)["runs"] if (folder / r["job_dir"] / "result.json").exists()}
    assert before, "at least one run completed before the kill"
    stamps = {p: (folder / r["job_dir"] / "result.json").stat().st_mtime_ns for p, r in before.items()}

    resumed = llem("run", str(study), "--resume-dir", str(folder), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = manifest_of(folder)
    assert after["status"] == "completed" and after["counts"] == {"completed": 4}
    for position, stamp in stamps.items():
        job = folder / after["runs"][position]["job_dir"]
        assert (job / "result.json").stat().st_mtime_ns == stamp
        assert after["runs"][position]["attempts"] == 1
        assert json.loads((job / "status.json").read_text())["status"] == "completed"
        assert not job.with_name(f"{job.name}.attempt1").exists(), "a finished run was started again"


def test_resume_refuses_config_drift(tiny_model_path, tmp_path):
    study = write_study(tmp_path, sweep={"dtype": ["float32"]}, study_execution={"n_cycles": 1})
    assert llem("run", str(study), "--output", str(tmp_path / "out"), cwd=tmp_path).returncode == 0
    folder = only_study_dir(tmp_path / "out")
    changed = write_study(tmp_path, sweep={"dtype": ["bfloat16"]}, study_execution={"n_cycles": 1})
    proc = llem("run", str(changed), "--resume-dir", str(folder), cwd=tmp_path)
    assert proc.returncode == 2 and "config drift" in proc.stderr and "Traceback" not in proc.stderr


def test_timeout_skips_the_rest(tiny_model_path, tmp_path):
    study = write_study(tmp_path, sweep={"dtype": ["float32", "bfloat16"]}, study_execution={"n_cycles": 2})
    proc = llem("run", str(study), "--output", str(tmp_path / "out"), "--timeout", "0.0000001", cwd=tmp_path)
    assert proc.returncode == 1
    manifest = manifest_of(only_study_dir(tmp_path / "out"))
    assert manifest["status"] == "timed_out" and manifest["counts"].get("skipped", 0) >= 3
    assert set(manifest["counts"]) <= {"completed", "skipped"}
    assert all(r["error"] == "wall_clock_timeout_hours reached" for r in manifest["runs"] if r["status"] == "skipped")


def test_ctrl_c_marks_the_study_interrupted(tiny_model_path, tmp_path):
    study = write_study(tmp_path, sweep={"dtype": ["float32", "bfloat16"]}, study_execution={"n_cycles": 3})
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "llem.cli", "run", str(study), "--output", str(out)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(out.glob("*/*/result.json")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    folder = only_study_dir(out)
    assert manifest_of(folder)["status"] == "interrupted"
    for status_file in folder.glob("*/status.json"):  # no worker outlives the study
        worker = json.loads(status_file.read_text()).get("worker") or {}
        if worker.get("pid"):
            assert (
                not Path(f"/proc/{worker['pid']}").exists()
                or "zombie" in Path(f"/proc/{worker['pid']}/status").read_text()
            )


def test_dry_run_prints_the_plan_with_memory_estimates(tiny_model_path, tmp_path):
    study = write_study(tmp_path, experiments=[{}, {"model": "org/not-cached-anywhere"}])
    proc = llem("run", str(study), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "GiB" in proc.stdout and "unknown" in proc.stdout
    assert "2 experiments x 3 cycles = 6 runs" in proc.stdout
    assert not (tmp_path / "outputs").exists(), "a dry run writes nothing"


def test_circuit_breaker_probe_resumes_after_a_success(tmp_path):
    from llem.study.execute import CircuitBreaker

    pauses = []
    breaker = CircuitBreaker(threshold=2, cooldown_s=7.0, sleep=pauses.append)
    assert [breaker.record(False), breaker.record(False)] == ["continue", "probe"]
    assert pauses == [7.0]
    assert breaker.record(True) == "continue" and breaker.failures == 0
    assert [breaker.record(False), breaker.record(False), breaker.record(False)] == ["continue", "probe", "abort"]
    assert CircuitBreaker(threshold=0, cooldown_s=1).record(False) == "continue"
    assert CircuitBreaker(threshold=1, cooldown_s=1).record(False) == "abort"


def test_runners_and_timeouts_reach_every_job(tiny_model_path, tmp_path):
    study = write_study(
        tmp_path,
        # the first job finishes well inside the limit on any machine; the second (300,000 tokens) cannot
        experiments=[{}, {"dataset": {"n_prompts": 200}, "max_output_tokens": 1500}],
        runners={"transformers": "inline"},
        study_execution={"n_cycles": 1, "experiment_order": "sequential", "experiment_timeout_seconds": 30},
    )
    proc = llem("run", str(study), "--output", str(tmp_path / "out"), "--runner", "process", cwd=tmp_path)
    assert proc.returncode == 1
    folder = only_study_dir(tmp_path / "out")
    runs = manifest_of(folder)["runs"]
    assert [r["status"] for r in runs] == ["completed", "failed"]
    assert runs[1]["error"].startswith("ExperimentTimeout: the worker was stopped after the experiment timeout of 30 s")
    for run in runs:  # --runner beats the file's runners:, and the timeout travels with it
        runner = json.loads((folder / run["job_dir"] / "experiment.json").read_text())["runner"]
        assert (runner["kind"], runner["source"], runner["experiment_timeout_seconds"]) == (
            "process",
            "runner.kind",
            30,
        )


def test_the_files_runners_apply_when_no_flag_is_given(tiny_model_path, tmp_path):
    study = write_study(tmp_path, runners={"pytorch": "inline"}, experiments=[{}], study_execution={"n_cycles": 1})
    proc = llem("run", str(study), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (job,) = only_study_dir(tmp_path / "out").glob("0000_*")
    assert json.loads((job / "experiment.json").read_text())["runner"]["kind"] == "inline"
    assert not (job / "worker.log").exists()


def test_an_invalid_runner_in_a_study_is_a_clear_error(tmp_path):
    study = write_study(tmp_path, runners={"vllm": "podman"}, experiments=[{}])
    proc = llem("run", str(study), "--dry-run", cwd=tmp_path)
    assert proc.returncode == 2 and "runners.vllm: invalid runner 'podman'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_study_keys_in_an_experiment_file_say_what_is_missing(tmp_path):
    study = write_study(tmp_path, study_execution={"n_cycles": 1})
    proc = llem("plan", str(study), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "name and study_execution belong to a study" in proc.stderr and "experiments: [{}]" in proc.stderr


def test_a_study_timeout_of_zero_is_a_clear_error(tmp_path):
    study = write_study(tmp_path, experiments=[{}], study_execution={"silence_timeout_seconds": 0})
    proc = llem("plan", str(study), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "study_execution.silence_timeout_seconds must be above 0" in proc.stderr


def test_explicit_values_beat_the_profile_in_both_front_ends(tiny_model_path, tmp_path):
    """The profile fills what nobody set; the file and the command line win over it, for ``llem run
    --profile`` as for ``python -m llem profile=``."""
    experiment = {**SMALL, "warmup": {"n_warmup": 1}, "baseline": {"enabled": False}}
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"name": "p", **experiment, "experiments": [{}]}))
    proc = llem("run", str(study), "--profile", "quick", "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (job,) = only_study_dir(tmp_path / "out").glob("0000_*")  # quick: one cycle
    from_study = json.loads((job / "experiment.json").read_text())["config"]

    overrides = ["model=llem-tiny", "max_output_tokens=4", "dataset.n_prompts=2", "energy_sampler=null"]
    explicit = ["warmup.n_warmup=1", "baseline.enabled=false"]
    single = subprocess.run(
        [sys.executable, "-m", "llem", "profile=quick", *overrides, *explicit, f"output_dir={tmp_path / 'job'}"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # Hydra's run folder (its log) lands here, not in the checkout
    )
    assert single.returncode == 0, single.stderr
    from_command_line = json.loads((tmp_path / "job" / "experiment.json").read_text())["config"]
    for config in (from_study, from_command_line):
        assert config["warmup"]["n_warmup"] == 1 and config["baseline"]["enabled"] is False, "explicit values win"
        assert config["warmup"]["thermal_floor_seconds"] == 0.0, "the profile fills what was not set"
    assert from_study["warmup"] == from_command_line["warmup"]
    assert from_study["baseline"] == from_command_line["baseline"]


def test_the_command_line_beats_the_study_file_and_the_profile(tmp_path):
    from llem.errors import ConfigError
    from llem.study.launch import RunOptions, build_plan

    study = write_study(tmp_path, warmup={"n_warmup": 1}, experiments=[{}, {"warmup": {"n_warmup": 4}}])
    for options in (
        RunOptions(profile="quick", overrides=["baseline.duration_seconds=9"]),
        RunOptions(overrides=["profile=quick", "baseline.duration_seconds=9"]),  # as python -m llem takes it
    ):
        plan, _, _ = build_plan(study, options)
        assert [e.config.warmup.n_warmup for e in plan.experiments] == [1, 4]
        assert {e.config.baseline.duration_seconds for e in plan.experiments} == {9}
        assert plan.n_cycles == 1
    for bad, message in (
        (RunOptions(overrides=["profile=fast"]), "profile=fast: choose one of publication, quick"),
        (RunOptions(profile="publication", overrides=["profile=quick"]), "disagree; give one of them"),
    ):
        with pytest.raises(ConfigError, match=message):
            build_plan(study, bad)


def test_the_study_files_cycles_and_order_beat_the_profile(tmp_path):
    """The profile's cycles and order fill only what neither the flags nor study_execution: set."""
    from llem.study.launch import PROFILE_CYCLES, PROFILE_ORDER, RunOptions, build_plan
    from llem.study.spec import ExperimentOrder

    explicit = write_study(tmp_path, experiments=[{}], study_execution={"n_cycles": 4, "experiment_order": "reverse"})
    for options in (
        RunOptions(),
        RunOptions(profile="quick"),
        RunOptions(profile="publication"),
        RunOptions(overrides=["profile=publication"]),
    ):
        plan, _, _ = build_plan(explicit, options)
        assert (plan.n_cycles, plan.order) == (4, ExperimentOrder.reverse), options
    flags = RunOptions(cycles=2, order=ExperimentOrder.sequential, profile="publication")
    plan, _, _ = build_plan(explicit, flags)
    assert (plan.n_cycles, plan.order) == (2, ExperimentOrder.sequential), "the flags beat the file"
    unset = write_study(tmp_path, experiments=[{}])
    plan, _, _ = build_plan(unset, RunOptions(profile="publication"))
    assert (plan.n_cycles, plan.order) == (PROFILE_CYCLES["publication"], PROFILE_ORDER["publication"])
    plan, _, _ = build_plan(unset, RunOptions(profile="quick"))
    assert plan.n_cycles == PROFILE_CYCLES["quick"]
