"""Resuming studies on the tiny built-in model: failed runs, a start cut short, one driver per folder."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.test_study_run import llem, manifest_of, model_without_weights, only_study_dir, write_study


def start_study(study: Path, *args: str) -> subprocess.Popen:
    """``llem run`` in the background, in a process group of its own (its jobs included)."""
    return subprocess.Popen(
        [sys.executable, "-m", "llem.cli", "run", str(study), *args],
        cwd=study.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(condition, what: str, limit_s: float = 600) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"waited {limit_s:.0f} s for {what}"
        time.sleep(0.01)


def result_stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.glob("*/result.json")}


def test_resume_runs_failed_runs_again_and_says_how_many(tiny_model_path, tmp_path):
    model = model_without_weights(tiny_model_path, tmp_path)
    study = write_study(
        tmp_path,
        experiments=[{"model": model}, {}],
        study_execution={"n_cycles": 1, "experiment_order": "sequential"},
    )
    out = tmp_path / "out"
    first = llem("run", str(study), "--output", str(out), cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    folder = only_study_dir(out)
    assert [r["status"] for r in manifest_of(folder)["runs"]] == ["failed", "completed"]
    kept = result_stamps(folder)
    shutil.copytree(tiny_model_path, model, dirs_exist_ok=True)  # the user fixes the cause
    original = study.read_text()
    study.write_text(original + "# the model is fixed\n")  # same design, another text

    resumed = llem("run", str(study), "--resume", "--output", str(out), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "1/2 runs completed; running again 1 failed run and 0 not finished" in resumed.stdout
    runs = manifest_of(folder)["runs"]
    assert [(r["status"], r["attempts"]) for r in runs] == [("completed", 2), ("completed", 1)]
    assert all(result_stamps(folder)[name] == stamp for name, stamp in kept.items()), "a finished result changed"
    failed_attempt = folder / f"{runs[0]['job_dir']}.attempt1"
    assert json.loads((failed_attempt / "status.json").read_text())["status"] == "failed", "the failure is kept"
    assert (folder / "study.yaml").read_text() == original, "the file the study started from is kept"
    (resumed_from,) = folder.glob("study.resumed-*.yaml")
    assert resumed_from.read_text() == study.read_text()
    again = llem("run", str(study), "--resume", "--output", str(out), cwd=tmp_path)
    assert again.returncode == 2 and "no unfinished study" in again.stderr


def test_a_study_killed_while_starting_can_be_resumed(tiny_model_path, tmp_path):
    study = write_study(tmp_path, sweep={"dtype": ["float32", "bfloat16"]}, study_execution={"n_cycles": 1})
    out = tmp_path / "out"
    proc = start_study(study, "--output", str(out))
    wait_for(lambda: out.is_dir() and any(out.iterdir()), "the study folder")
    os.killpg(proc.pid, signal.SIGKILL)  # as early in the start as the folder can be seen
    proc.communicate()
    (folder,) = out.iterdir()
    resumed = llem("run", str(study), "--resume", "--output", str(out), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming {folder}" in resumed.stdout
    manifest = manifest_of(folder)
    assert manifest["counts"] == {"completed": 2} and [r["attempts"] for r in manifest["runs"]] == [1, 1]


def test_a_folder_left_before_its_manifest_was_written_is_adopted(tiny_model_path, tmp_path):
    """What a kill between creating the folder and writing the manifest leaves: no manifest, no runs."""
    study = write_study(tmp_path, sweep={"dtype": ["float32"]}, study_execution={"n_cycles": 1})
    out = tmp_path / "out"
    folder = out / "2026-01-01T00-00-00"
    folder.mkdir(parents=True)
    (folder / "driver.lock").write_text("pid 1 on a host that was killed")
    resumed = llem("run", str(study), "--resume", "--output", str(out), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "stopped while starting" in resumed.stdout
    assert only_study_dir(out) == folder and manifest_of(folder)["counts"] == {"completed": 1}

    elsewhere = tmp_path / "not-a-study"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("mine")
    proc = llem("run", str(study), "--resume-dir", str(elsewhere), cwd=tmp_path)
    assert proc.returncode == 2 and "no manifest.json there" in proc.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == ["notes.txt"], "a folder that is not a study is left alone"


def test_two_drivers_never_share_a_study_folder(tiny_model_path, tmp_path):
    study = write_study(tmp_path, sweep={"dtype": ["float32", "bfloat16"]}, study_execution={"n_cycles": 2})
    out = tmp_path / "out"
    first = llem("run", str(study), "--output", str(out), "--cycles", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    folder = only_study_dir(out)
    # The study grows to 2 cycles; one driver resumes it, and is frozen once its first new run finished.
    driver = start_study(study, "--resume-dir", str(folder), "--no-lock")
    wait_for(lambda: len(list(folder.glob("*_c1/result.json"))) >= 1, "a run of the second cycle")
    os.killpg(driver.pid, signal.SIGSTOP)
    try:
        for flags in (["--resume", "--output", str(out)], ["--resume-dir", str(folder)]):
            second = llem("run", str(study), *flags, "--no-lock", cwd=tmp_path)
            assert second.returncode == 1, second.stdout + second.stderr
            assert f"is being run by another llem run (pid {driver.pid} on" in second.stderr
            assert "Traceback" not in second.stderr
        replay = subprocess.run(  # the exact Hydra command the study launched, run by hand
            shlex.split((folder / "hydra_command.txt").read_text()), capture_output=True, text=True, timeout=600
        )
        assert replay.returncode != 0 and f"pid {driver.pid} on" in replay.stderr
    finally:
        os.killpg(driver.pid, signal.SIGCONT)
    stdout, stderr = driver.communicate(timeout=600)
    assert driver.returncode == 0, stdout + stderr
    manifest = manifest_of(folder)
    assert manifest["counts"] == {"completed": 4} and all(r["attempts"] == 1 for r in manifest["runs"])
    assert not list(folder.glob("*.attempt*")), "no run was started twice"
