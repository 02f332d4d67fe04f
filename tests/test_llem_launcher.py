"""llem's submitit launchers (``hydra_plugins.llem_launcher``): discovery, config names, the refusal of
hydra-submitit-launcher's own launchers, and a job killed during a real ``python -m llem -m`` sweep on
the local submitit executor. The same launchers on a real Slurm cluster: ``tests/test_slurm.py``."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hydra.core.utils import JobStatus
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf

from llem.errors import ConfigError
from llem.study.submitit_jobs import UnfinishedJob, record_unfinished, selects_slurm

TINY = ["model=llem-tiny", "dataset.n_prompts=2", "max_output_tokens=2", "warmup.n_warmup=0", "energy_sampler=null"]


def python_m_llem(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llem", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def compose_launcher(config_name: str, launcher: str):
    from hydra import compose, initialize_config_module

    from llem.config.store import register_configs

    register_configs()
    with initialize_config_module("llem.conf", version_base="1.3"):
        cfg = compose(config_name, overrides=[f"hydra/launcher={launcher}"], return_hydra_config=True)
    return cfg.hydra.launcher


def test_info_plugins_lists_the_launchers(tmp_path):
    proc = python_m_llem("--info", "plugins", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    launchers = proc.stdout.split("Launcher:")[1].split("Sweeper:")[0].split()
    assert "LlemSlurmLauncher" in launchers and "LlemLocalLauncher" in launchers
    assert "hydra_plugins.llem_launcher.llem_launcher" in proc.stdout  # imported at start: keep it light


def test_plugin_module_is_import_light(tmp_path):
    """Every Hydra app imports it at start: nothing of submitit, llem or the engines comes with it."""
    code = (
        "import sys; import hydra.core.utils; before = set(sys.modules); "
        "import hydra_plugins.llem_launcher.llem_launcher; "
        "print(' '.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.split()) == {"hydra_plugins"}, proc.stdout


@pytest.mark.parametrize("config_name", ["config", "study"])
@pytest.mark.parametrize(
    ("launcher", "target", "fields"),
    [
        ("llem_slurm", "LlemSlurmLauncher", SlurmQueueConf),
        ("slurm_gpu", "LlemSlurmLauncher", SlurmQueueConf),
        ("slurm_array", "LlemSlurmLauncher", SlurmQueueConf),
        ("llem_submitit_local", "LlemLocalLauncher", LocalQueueConf),
    ],
)
def test_llem_launchers_compose(config_name, launcher, target, fields):
    composed = compose_launcher(config_name, launcher)
    assert composed._target_ == f"hydra_plugins.llem_launcher.llem_launcher.{target}"
    assert set(composed.keys()) == {f.name for f in dataclasses.fields(fields)}  # hydra-submitit-launcher's


@pytest.mark.parametrize(
    ("launcher", "instead"), [("submitit_slurm", "llem_slurm"), ("submitit_local", "llem_submitit_local")]
)
def test_hydra_submitit_launchers_are_refused_with_the_name_to_use(launcher, instead):
    with pytest.raises(ConfigError, match=f"choose hydra/launcher={instead} \\(the same fields"):
        selects_slurm([f"hydra/launcher={launcher}"], config_name="config")


def test_hydra_submitit_launcher_refused_before_python_m_llem_sweeps(tmp_path):
    proc = python_m_llem("-m", "hydra/launcher=submitit_slurm", *TINY, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("llem: hydra/launcher=submitit_slurm is hydra-submitit-launcher's own launcher")
    assert not (tmp_path / "outputs").exists()


def test_hydra_submitit_launcher_refused_before_llem_run_writes_anything(tmp_path, capsys):
    from llem.cli import main

    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"name": "s", "model": "llem-tiny", "experiments": [{}]}))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(study), "--output", str(tmp_path / "out"), "hydra/launcher=submitit_local"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert "choose hydra/launcher=llem_submitit_local" in err
    assert not (tmp_path / "out").exists()


# --- what a job that ended without returning leaves behind ------------------------------------------


def test_unfinished_job_does_not_stop_a_hydra_sweep():
    """Hydra's BasicSweeper reads ``return_value`` of each job and re-raises a failed job's exception."""
    job = UnfinishedJob(reason="stopped by Slurm: TIMEOUT (TimeLimit); job 7_0", exit_reason="stopped by Slurm")
    assert job.status == JobStatus.FAILED and job.return_value is None


def test_kill_recorded_over_a_running_status(tmp_path):
    started = {"status": "running", "started_at": "2026-01-01T00:00:00Z", "pid": 4711, "study_run": {"position": 3}}
    (tmp_path / "status.json").write_text(json.dumps(started))
    reason = "stopped by Slurm: CANCELLED; job 12_0; *** JOB 13 ON n1 CANCELLED AT 2026-01-01T00:01:00 ***"
    record_unfinished(tmp_path, UnfinishedJob(reason=reason, exit_reason="stopped by Slurm"))
    status = json.loads((tmp_path / "status.json").read_text())
    assert {k: status[k] for k in started if k != "status"} == {k: v for k, v in started.items() if k != "status"}
    assert status["status"] == "failed" and status["error_type"] == "JobKilled" and status["message"] == reason
    assert status["exit_reason"] == "stopped by Slurm" and status["finished_at"]


def test_kill_recorded_for_a_job_that_never_started(tmp_path):
    job_dir = tmp_path / "sweep" / "1"
    record_unfinished(job_dir, UnfinishedJob(reason="stopped by Slurm: CANCELLED; job 12_1", exit_reason="x"))
    assert json.loads((job_dir / "status.json").read_text())["message"] == "stopped by Slurm: CANCELLED; job 12_1"


@pytest.mark.parametrize("own", ["completed", "failed", "interrupted"])
def test_the_jobs_own_verdict_is_kept(tmp_path, own):
    verdict = json.dumps({"status": own, "error_type": "DatasetError", "message": "no such file"})
    (tmp_path / "status.json").write_text(verdict)
    record_unfinished(tmp_path, UnfinishedJob(reason="stopped by Slurm: CANCELLED; job 1", exit_reason="x"))
    assert (tmp_path / "status.json").read_text() == verdict


def test_a_finished_measurement_is_not_marked_failed(tmp_path):
    """The task died after its worker wrote result.json: the study takes the result as it is."""
    running = json.dumps({"status": "running"})
    (tmp_path / "status.json").write_text(running)
    (tmp_path / "result.json").write_text("{}")
    record_unfinished(tmp_path, UnfinishedJob(reason="stopped by Slurm: CANCELLED; job 1", exit_reason="x"))
    assert (tmp_path / "status.json").read_text() == running


# --- a real sweep on the local submitit executor ----------------------------------------------------


def test_python_m_llem_sweep_goes_on_past_a_killed_job(tiny_model_path, tmp_path):
    """Two jobs at once (submitit_local runs a launch concurrently); job 0's process is killed as soon
    as it has started. Job 1 completes, job 0 is recorded as killed, the sweep exits 1 with a summary."""
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "llem", "-m", "hydra/launcher=llem_submitit_local", *TINY,
            "runner.kind=inline",  # the measurement runs in the job's own process: one kill ends the job
            "dtype=float32,bfloat16", f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    status_file = sweep / "0" / "status.json"
    deadline = time.monotonic() + 300
    while not status_file.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status_file.exists(), "job 0 did not start"
    os.kill(json.loads(status_file.read_text())["pid"], signal.SIGKILL)  # the status file's first write has it
    out, err = proc.communicate(timeout=300)

    assert proc.returncode == 1 and "Traceback" not in err, err
    killed = json.loads(status_file.read_text())
    assert killed["status"] == "failed" and killed["error_type"] == "JobKilled"
    assert killed["message"].startswith("ended without a result (killed?); submitit local job ")
    assert json.loads((sweep / "1" / "status.json").read_text())["status"] == "completed"
    assert (sweep / "1" / "result.json").exists()
    assert f"llem: job 0 failed: {killed['message']}" in err
    assert err.strip().splitlines()[-1] == f"llem: sweep finished: 1/2 jobs completed, 1 killed; results in {sweep}"
