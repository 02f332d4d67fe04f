"""Slurm through llem's launcher (``llem_slurm``, built on hydra-submitit-launcher's): presets,
scheduler verdicts, and a real study and a real ``python -m llem -m`` sweep on a single-node Slurm
cluster started by ``tests/slurm/cluster.py``.

The cluster test (marked ``slurm``) needs the Slurm and munge programs and root. With
``LLEM_TEST_SLURM=1`` (CI, ``nox -s slurm``) it installs them when missing and fails rather than skips
if the cluster cannot start; without it, it runs when they are installed and skips otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from llem.study import submitit_jobs
from llem.study.execute import Execution, LaunchError, execute
from llem.study.submitit_jobs import UnfinishedJob, record_unfinished
from tests.fakes.result import write_example_result

SMALL = {
    "model": "llem-tiny",
    "max_output_tokens": 2,
    "dataset": {"n_prompts": 2},
    "warmup": {"n_warmup": 0},
    "energy_sampler": None,
}
REQUIRED = os.environ.get("LLEM_TEST_SLURM") == "1"


def load_cluster_module():
    spec = importlib.util.spec_from_file_location("llem_test_cluster", Path(__file__).parent / "slurm" / "cluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- presets: compose through Hydra, no cluster needed ------------------------------------------


def compose_hydra(config_name: str, overrides: list[str]):
    from hydra import compose, initialize_config_module

    from llem.config.store import register_configs

    register_configs()
    with initialize_config_module("llem.conf", version_base="1.3"):
        return compose(config_name, overrides=overrides, return_hydra_config=True).hydra


@pytest.mark.parametrize("config_name", ["config", "study"])
def test_slurm_gpu_preset_composes(config_name):
    hydra = compose_hydra(config_name, ["hydra/launcher=slurm_gpu", "hydra.launcher.partition=a100"])
    launcher = hydra.launcher
    assert launcher._target_ == "hydra_plugins.llem_launcher.llem_launcher.LlemSlurmLauncher"
    assert launcher.gpus_per_node == 1 and launcher.partition == "a100" and launcher.timeout_min == 120
    assert launcher.additional_parameters == {"exclusive": True}
    assert launcher.setup is None  # the module load lines are commented examples


@pytest.mark.parametrize("config_name", ["config", "study"])
def test_slurm_array_preset_composes(config_name):
    hydra = compose_hydra(config_name, ["hydra/launcher=slurm_array", "hydra.launcher.array_parallelism=1"])
    assert hydra.launcher._target_.endswith("LlemSlurmLauncher") and hydra.launcher.array_parallelism == 1
    if config_name == "study":  # llem's sweeper: one run per submission unless max_batch_size=null
        assert hydra.sweeper._target_.endswith("LlemSweeper") and hydra.sweeper.max_batch_size == 1


def test_presets_selectable_from_python_m_llem(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "llem", "--cfg", "hydra", "hydra/launcher=slurm_gpu", "+hydra.launcher.qos=high"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    launcher = yaml.safe_load(proc.stdout)["hydra"]["launcher"]
    assert launcher["gpus_per_node"] == 1 and launcher["qos"] == "high"


def test_llem_run_without_slurm_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from llem.cli import main

    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"name": "s", **SMALL, "experiments": [{}]}))
    monkeypatch.setattr(submitit_jobs.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(study), "--output", str(tmp_path / "out"), "hydra/launcher=slurm_gpu"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert "hydra/launcher=slurm_gpu submits the runs to Slurm, but sbatch, srun, squeue are not on PATH" in err
    assert not (tmp_path / "out").exists(), "nothing is written before the check"


def test_slurm_that_does_not_answer_is_a_clear_error(tmp_path, monkeypatch):
    """Slurm installed, but no controller reachable (no SLURM_CONF): one line, before any submission."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sbatch", "srun", "squeue", "sinfo"):
        tool = bin_dir / name
        tool.write_text("#!/bin/sh\necho 'sinfo: fatal: Could not establish a configuration source' >&2\nexit 1\n")
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "llem", "hydra/launcher=slurm_gpu", "model=llem-tiny", "-m"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "Slurm does not answer here (sinfo: fatal: Could not establish a configuration source)" in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_llem_run_with_an_unknown_launcher_is_a_clear_error(tmp_path, capsys):
    from llem.cli import main

    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"name": "s", **SMALL, "experiments": [{}]}))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(study), "--output", str(tmp_path / "out"), "hydra/launcher=slurm_gpus"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "slurm_gpu" in err and "Traceback" not in err


# --- scheduler verdicts in the manifest, with a stand-in launch ------------------------------------


def plan_of(n: int) -> dict:
    runs = [
        {"position": i, "experiment_id": f"e{i}", "cycle": 0, "engine": "transformers", "overrides": []}
        for i in range(n)
    ]
    return {"study_name": "s", "study_design_hash": "h", "runs": runs}


def write_status(job_dir: Path, status: str) -> None:
    job_dir.mkdir(parents=True)
    (job_dir / "status.json").write_text(json.dumps({"status": status}))


def test_scheduler_reason_recorded_for_jobs_without_a_verdict(tmp_path):
    """What llem's launcher does with jobs Slurm stopped (record, return), and what the study makes of it."""
    reasons = ["stopped by Slurm: TIMEOUT (TimeLimit); job 7_0", "stopped by Slurm: NODE_FAIL; job 7_1"]

    def launch(jobs, first_index):
        write_status(tmp_path / "0000_e0_c0", "running")  # killed mid-run; 0001 never started
        unfinished = [UnfinishedJob(reason=reason, exit_reason="stopped by Slurm") for reason in reasons]
        for job_dir, job in zip(["0000_e0_c0", "0001_e1_c0"], unfinished):
            record_unfinished(tmp_path / job_dir, job)
        return unfinished

    manifest = execute(launch, plan_of(2), tmp_path, [], Execution(), max_batch_size=None)
    runs = manifest.data["runs"]
    assert [r["status"] for r in runs] == ["failed", "failed"]
    assert [r["error"] for r in runs] == [f"JobKilled: {reason}" for reason in reasons]
    assert manifest.data["status"] == "completed"  # the study ran to its end; the runs say what failed


def test_submitit_time_limit_warning_reads_as_a_timeout(tmp_path):
    """Slurm's USR2 warning before the time limit makes submitit raise inside the job, which llem
    records as the job's own error (seen on the test cluster with ``hydra.launcher.timeout_min=1``)."""

    def launch(jobs, first_index):
        status = {"status": "failed", "error_type": "UncompletedJobError"}
        status["message"] = "Job not requeued because: timed-out too many times."
        (tmp_path / "0000_e0_c0").mkdir()
        (tmp_path / "0000_e0_c0" / "status.json").write_text(json.dumps(status))
        return [None]

    run = execute(launch, plan_of(1), tmp_path, [], Execution()).run(0)
    assert run["status"] == "failed" and run["error"].startswith("stopped by Slurm: TIMEOUT (the time limit was near")


def test_launch_error_stops_the_study_with_its_message(tmp_path):
    def launch(jobs, first_index):
        raise LaunchError("the slurm scheduler refused the jobs: sbatch: error: invalid partition name")

    manifest = execute(launch, plan_of(3), tmp_path, [], Execution())
    runs = manifest.data["runs"]
    assert manifest.data["status"] == "launch_failed"
    assert runs[0]["status"] == "failed" and "invalid partition" in runs[0]["error"]
    assert [r["status"] for r in runs[1:]] == ["skipped", "skipped"]


def test_resume_adopts_runs_that_finished_unseen(tmp_path):
    """A Slurm job that completed after its ``llem run`` died is recorded, not run again."""
    plan = plan_of(2)
    calls = []

    def dies(jobs, first_index):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(dies, plan, tmp_path, [], Execution())
    job = tmp_path / "0000_e0_c0"
    write_status(job, "completed")
    write_example_result(job, output_tokens=2, inference_time_s=1.0)

    def records(jobs, first_index):
        calls.append([o for o in jobs[0] if o.startswith("study_run.position")])
        write_status(tmp_path / "0001_e1_c0", "failed")
        return [None]

    manifest = execute(records, plan, tmp_path, [], Execution())
    assert calls == [["study_run.position=1"]]
    assert manifest.run(0)["status"] == "completed" and manifest.run(0)["attempts"] == 1


# --- a real study on a real single-node Slurm cluster ---------------------------------------------


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node cluster; ``SLURM_CONF`` is exported while the module's tests run."""
    cluster_module = load_cluster_module()
    missing = cluster_module.missing_programs()
    if missing and not REQUIRED:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} not on PATH); LLEM_TEST_SLURM=1 installs it")
    if os.geteuid() != 0:
        if REQUIRED:
            pytest.fail("LLEM_TEST_SLURM=1: starting the test cluster needs root (munged runs as user munge)")
        pytest.skip("starting the Slurm test cluster needs root (munged runs as user munge)")
    if missing:
        cluster_module.install()
    cluster = cluster_module.SlurmCluster()  # its own temp dir: munged cannot enter pytest's (mode 700)
    started = time.monotonic()
    cluster.start()
    print(f"slurm cluster up in {time.monotonic() - started:.1f} s")
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
        cluster.stop()


def llem_run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llem.cli", "run", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def first_running_job(submitter: subprocess.Popen) -> str:
    """The id of the first job Slurm runs for ``submitter`` (a busy machine may take minutes to get there)."""
    deadline = time.monotonic() + 600  # a guard against a hang, not a speed requirement
    while time.monotonic() < deadline and submitter.poll() is None:
        out = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True).stdout.split()
        if "RUNNING" in out:
            return out[out.index("RUNNING") - 1]
        time.sleep(0.2)
    output = "".join(filter(None, submitter.communicate(timeout=60))) if submitter.poll() is not None else "(running)"
    raise AssertionError(f"no Slurm job started; the submitting process: {output}")


@pytest.mark.slurm
def test_study_on_slurm(slurm_cluster, tiny_model_path, tmp_path):
    """One array of three runs (one fails in llem), then a resume whose job Slurm cancels, then a
    resume that completes it; the completed runs are never run again."""
    model = tmp_path / "model"  # llem-tiny with broken weights: it passes the pre-flight, then fails to load
    shutil.copytree(tiny_model_path, model)
    (model / "model.safetensors").write_bytes(b"not a safetensors file")
    study = tmp_path / "study.yaml"
    experiments = [{"dtype": "float32"}, {"model": str(model)}, {"dtype": "bfloat16"}]
    study.write_text(yaml.safe_dump({"name": "s", **SMALL, "experiments": experiments}))
    common = ["--cycles", "1", "--order", "sequential", "--no-gaps"]

    # 1. the whole study as one Slurm array (order-free); the broken model fails inside llem
    array = ["hydra/launcher=slurm_array", "hydra.sweeper.max_batch_size=null", "hydra.launcher.gpus_per_node=null"]
    proc = llem_run(str(study), *common, "--output", str(tmp_path / "out"), *array, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (folder,) = [p.parent for p in (tmp_path / "out").glob("*/manifest.json")]
    runs = manifest_of(folder)["runs"]
    launcher = (folder / runs[0]["job_dir"] / ".hydra" / "hydra.yaml").read_text()
    assert "_target_: hydra_plugins.llem_launcher.llem_launcher.LlemSlurmLauncher" in launcher
    assert [r["status"] for r in runs] == ["completed", "failed", "completed"]
    own = json.loads((folder / runs[1]["job_dir"] / "status.json").read_text())  # the job's own verdict
    assert runs[1]["error"] == f"{own['error_type']}: {own['message']}" and own["error_type"] != "JobKilled"
    tasks = [p.name for p in (folder / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", p.name)]
    assert len(tasks) == 3 and len({t.split("_")[0] for t in tasks}) == 1, f"one array of three tasks: {tasks}"
    stamps = {
        r["position"]: (folder / r["job_dir"] / "result.json").stat().st_mtime_ns for r in runs if r["result_path"]
    }
    assert (folder / "summary.csv").exists() and (folder / "summary_experiments.csv").exists()
    assert "Study complete: 2/3 ran, 1 failed" in proc.stdout

    # 2. resume: only the failed run is submitted; Slurm cancels it while its job sets up
    shutil.copytree(tiny_model_path, model, dirs_exist_ok=True)
    sleeping = ["hydra/launcher=slurm_gpu", "hydra.launcher.setup=['sleep 300']"]
    resumed = subprocess.Popen(
        [sys.executable, "-m", "llem.cli", "run", str(study), *common, "--resume-dir", str(folder), *sleeping],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    job_id = first_running_job(resumed)
    subprocess.run(["scancel", job_id], check=True)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 1, out
    runs = manifest_of(folder)["runs"]
    assert [r["status"] for r in runs] == ["completed", "failed", "completed"]
    assert runs[1]["attempts"] == 2
    assert runs[1]["error"].startswith(f"JobKilled: stopped by Slurm: CANCELLED; job {job_id}; ***"), runs[1]["error"]
    assert f"*** JOB {job_id} ON {slurm_cluster.host} CANCELLED AT" in runs[1]["error"]
    killed = json.loads((folder / runs[1]["job_dir"] / "status.json").read_text())  # the job never started
    assert killed["status"] == "failed" and killed["exit_reason"] == "stopped by Slurm"
    assert "Traceback" not in out

    # 3. resume again, one GPU-exclusive job (the preset as is): the study completes
    proc = llem_run(str(study), *common, "--resume-dir", str(folder), "hydra/launcher=slurm_gpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    manifest = manifest_of(folder)
    assert manifest["status"] == "completed" and manifest["counts"] == {"completed": 3}
    assert [r["attempts"] for r in manifest["runs"]] == [1, 3, 1]
    for position, stamp in stamps.items():
        assert (folder / manifest["runs"][position]["job_dir"] / "result.json").stat().st_mtime_ns == stamp
    summary = (folder / "summary.csv").read_text().splitlines()
    assert len(summary) == 4 and all(",completed," in line for line in summary[1:])
    states = submitit_jobs.squeue_states([*tasks, "999999"])  # the array's tasks, and a job Slurm never had
    assert [states[t] for t in tasks] == ["COMPLETED"] * 3 and states["999999"].startswith("ENDED (state unknown")
    submitted = sorted((folder / ".submitit").glob("*/*_submission.sh"))
    assert "#SBATCH --exclusive" in submitted[-1].read_text() and "--gpus-per-node=1" in submitted[-1].read_text()


@pytest.mark.slurm
def test_python_m_llem_sweep_on_slurm_goes_on_past_a_killed_job(slurm_cluster, tiny_model_path, tmp_path):
    """Hydra's own sweeper with llem's launcher: one array of two runs, one at a time (``slurm_gpu``:
    the node to each run); Slurm cancels the first while it sets up. The second still runs, the first
    is recorded with Slurm's state and the slurmstepd line, and the sweep exits 1 with a summary."""
    sweep = tmp_path / "sweep"
    tiny = ["model=llem-tiny", "max_output_tokens=2", "dataset.n_prompts=2", "warmup.n_warmup=0", "energy_sampler=null"]
    first_sleeps = "hydra.launcher.setup=['test $SLURM_ARRAY_TASK_ID != 0 || sleep 300']"
    sweeping = subprocess.Popen(
        [
            sys.executable, "-m", "llem", "-m", "hydra/launcher=slurm_gpu", first_sleeps, *tiny,
            "dtype=float32,bfloat16", f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    job_id = first_running_job(sweeping)
    assert job_id.endswith("_0"), job_id
    subprocess.run(["scancel", job_id], check=True)
    out, err = sweeping.communicate(timeout=600)

    assert sweeping.returncode == 1 and "Traceback" not in out + err, out + err
    killed = json.loads((sweep / "0" / "status.json").read_text())
    assert killed["status"] == "failed" and killed["error_type"] == "JobKilled"
    assert killed["message"].startswith(f"stopped by Slurm: CANCELLED; job {job_id}; ***"), killed["message"]
    assert re.search(rf"\*\*\* JOB \d+ ON {slurm_cluster.host} CANCELLED AT \S+ \*\*\*", killed["message"])
    assert json.loads((sweep / "1" / "status.json").read_text())["status"] == "completed"
    assert (sweep / "1" / "result.json").exists()
    assert "hydra_plugins.llem_launcher.llem_launcher.LlemSlurmLauncher" in (sweep / "multirun.yaml").read_text()
    assert f"llem: job 0 failed: {killed['message']}" in err
    assert err.strip().splitlines()[-1] == f"llem: sweep finished: 1/2 jobs completed, 1 killed; results in {sweep}"


@pytest.mark.slurm
def test_submission_sbatch_refuses_is_one_message_under_both_front_ends(slurm_cluster, tmp_path):
    """A partition the cluster lacks: sbatch refuses. ``llem run`` records it and stops the study;
    ``python -m llem -m`` prints the refusal as one message (no traceback) and exits 1."""
    partition = ["hydra/launcher=slurm_gpu", "hydra.launcher.partition=nope"]
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"name": "s", **SMALL, "sweep": {"dtype": ["float32", "bfloat16"]}}))
    proc = llem_run(str(study), "--cycles", "1", "--output", str(tmp_path / "out"), *partition, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    (folder,) = [p.parent for p in (tmp_path / "out").glob("*/manifest.json")]
    manifest = manifest_of(folder)
    assert manifest["status"] == "launch_failed"
    assert [r["status"] for r in manifest["runs"]] == ["failed", "skipped"]
    refused = "the slurm scheduler refused the jobs: sbatch: error: invalid partition"
    assert manifest["runs"][0]["error"].startswith(refused)

    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, "-m", "llem", "-m", *partition, "model=llem-tiny", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"\n{refused}" in proc.stderr
    assert not list(sweep.glob("*/status.json"))


@pytest.mark.slurm
def test_ctrl_c_while_waiting_names_the_slurm_jobs_left_running(slurm_cluster, tmp_path):
    """Slurm jobs outlive the submitting process: Ctrl-C says which, and how to stop them."""
    sweeping = subprocess.Popen(
        [
            sys.executable, "-m", "llem", "-m", "hydra/launcher=slurm_gpu", "hydra.launcher.setup=['sleep 300']",
            "model=llem-tiny", f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    job_id = first_running_job(sweeping)
    sweeping.send_signal(signal.SIGINT)
    out, err = sweeping.communicate(timeout=600)
    try:
        assert sweeping.returncode != 0 and "Traceback" not in out + err, out + err
        assert f"Slurm jobs {job_id} keep running; `scancel {job_id}` stops them" in out, out  # Hydra's log
        running = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True).stdout.split()
        assert running == [job_id, "RUNNING"]
    finally:
        subprocess.run(["scancel", job_id], check=True)
