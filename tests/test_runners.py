"""Runners: the supervised worker process, runner precedence, and jobs measured in their own worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llem.errors import ConfigError
from llem.runners import RunnerChoice, choose_runner, parse_runner
from llem.runners.supervise import Supervisor


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The supervisor, on real child processes
# ---------------------------------------------------------------------------------------------


def test_output_goes_to_the_log_and_the_exit_is_recorded(tmp_path):
    log = tmp_path / "worker.log"
    exit = Supervisor(python("print('hello'); import sys; sys.exit(3)"), log, echo=None).run()
    assert (exit.reason, exit.returncode, exit.detail) == ("exited", 3, "exit code 3")
    assert log.read_text() == "hello\n"


def test_timeout_stops_the_whole_process_group(tmp_path):
    pid_file = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    exit = Supervisor(python(code), tmp_path / "worker.log", timeout_s=3, echo=None).run()
    assert exit.reason == "timeout" and "experiment timeout of 3 s" in exit.detail
    assert 3 <= exit.wall_s < 60  # stopped by the limit, not by the worker's own end after 60 s
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(grandchild), "the worker's own child survived the timeout"


def test_silence_timeout_restarts_with_each_line(tmp_path):
    # Ten lines 0.5 s apart outlast one silence limit of 4 s only if each line restarts it; a stall
    # of up to 3.5 s between two lines (a loaded machine) still keeps the worker alive.
    code = "import time\nfor i in range(10):\n    print(i, flush=True); time.sleep(0.5)\ntime.sleep(60)\n"
    exit = Supervisor(python(code), tmp_path / "worker.log", silence_s=4, echo=None).run()
    assert exit.reason == "silence" and "4 s without output" in exit.detail
    assert exit.wall_s >= 4.5 + 4  # the lines kept it alive for 4.5 s at least, then 4 s of silence
    assert (tmp_path / "worker.log").read_text().split() == [str(i) for i in range(10)]


def test_killed_worker_is_reported_with_its_signal(tmp_path):
    exit = Supervisor(
        python("import os, signal; os.kill(os.getpid(), signal.SIGKILL)"), tmp_path / "l", echo=None
    ).run()
    assert exit.returncode == -9 and exit.detail == "killed by SIGKILL (out of memory?)"


def test_ctrl_c_stops_the_worker_and_propagates(tmp_path):
    pid_file = tmp_path / "worker.pid"
    code = (
        "import os, time\n"
        f"open({str(pid_file)!r} + '.tmp', 'w').write(str(os.getpid()))\n"
        f"os.replace({str(pid_file)!r} + '.tmp', {str(pid_file)!r})\n"  # the pid file appears whole
        "time.sleep(60)\n"
    )

    def ctrl_c_once_the_worker_runs() -> None:
        deadline = time.monotonic() + 300  # a hang guard only: the worker writes its pid at once
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C

    threading.Thread(target=ctrl_c_once_the_worker_runs, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        Supervisor(python(code), tmp_path / "worker.log", echo=None).run()
    assert not alive(int(pid_file.read_text()))


# ---------------------------------------------------------------------------------------------
# Runner choice: $LLEM_RUNNER_<ENGINE> > explicit (--runner, runners:) > user config > process
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def user_config(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    monkeypatch.setenv("LLEM_USER_CONFIG", str(path))
    for engine in ("TRANSFORMERS", "VLLM", "TENSORRT"):
        monkeypatch.delenv(f"LLEM_RUNNER_{engine}", raising=False)
    return path


def test_runner_precedence(user_config, monkeypatch):
    assert choose_runner("vllm", None) == RunnerChoice("process", None, "default")
    user_config.write_text("runners:\n  vllm: docker\n")
    assert choose_runner("vllm", None).kind == "docker" and "runners.vllm" in choose_runner("vllm", None).source
    assert choose_runner("vllm", "inline") == RunnerChoice("inline", None, "runner.kind")
    monkeypatch.setenv("LLEM_RUNNER_VLLM", "docker:my/vllm:1")
    assert choose_runner("vllm", "inline") == RunnerChoice("docker", "my/vllm:1", "$LLEM_RUNNER_VLLM")
    assert choose_runner("transformers", None).kind == "process"  # other engines keep their own


def test_local_is_the_process_runner():
    assert parse_runner("local", "x").kind == "process"


@pytest.mark.parametrize("bad", ["dockr", "docker:", "ssh"])
def test_a_bad_runner_names_its_source(bad):
    with pytest.raises(ConfigError, match=r"\$LLEM_RUNNER_VLLM: invalid runner"):
        parse_runner(bad, "$LLEM_RUNNER_VLLM")


def test_a_bad_runner_in_the_user_config_names_the_file_and_key(user_config):
    user_config.write_text("runners:\n  vllm: dockr\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: invalid user config:\n  - runners\.vllm: invalid runner"):
        choose_runner("vllm", None)


# ---------------------------------------------------------------------------------------------
# Jobs end to end: python -m llem on the tiny model, each job in its own worker
# ---------------------------------------------------------------------------------------------

TINY = ["model=llem-tiny", "dataset.n_prompts=2", "max_output_tokens=4", "warmup.n_warmup=0", "energy_sampler=null"]


def run_llem(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llem", *TINY, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_sweep_jobs_each_run_in_a_fresh_worker(tiny_model_path, tmp_path):
    proc = run_llem(tmp_path, "max_output_tokens=3,4", "hydra.sweep.dir=sweep", "-m")
    assert proc.returncode == 0, proc.stderr
    statuses = [read(tmp_path / "sweep" / str(n) / "status.json") for n in (0, 1)]
    workers = [s["worker"]["pid"] for s in statuses]
    assert len(set(workers)) == 2 and statuses[0]["pid"] not in workers  # one worker each, not the task
    for n, status in enumerate(statuses):
        assert status["status"] == "completed" and status["worker"]["exit_code"] == 0
        assert status["runner"] == "process (from default)"
        assert "measuring 2 prompts" in (tmp_path / "sweep" / str(n) / "worker.log").read_text()


def test_inline_runner_measures_in_the_task_process(tiny_model_path, tmp_path):
    proc = run_llem(tmp_path, "runner.kind=inline", "hydra.run.dir=run")
    assert proc.returncode == 0, proc.stderr
    status = read(tmp_path / "run" / "status.json")
    assert status["status"] == "completed" and status["worker"] is None
    assert not (tmp_path / "run" / "worker.log").exists()
    assert read(tmp_path / "run" / "experiment.json")["runner"]["kind"] == "inline"


def test_worker_error_is_recorded_without_a_traceback(tiny_model_path, tmp_path):
    proc = run_llem(tmp_path, "transformers.load_in_8bit=true", "hydra.run.dir=run")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    status = read(tmp_path / "run" / "status.json")
    assert status["error_type"] == "EngineUnavailableError" and "load_in_8bit" in status["message"]
    assert status["exit_reason"] == "error" and status["traceback"] is None and status["worker"]["exit_code"] == 1


def test_experiment_timeout_stops_the_worker(tiny_model_path, tmp_path):
    proc = run_llem(
        tmp_path,
        "dataset.n_prompts=200",
        "max_output_tokens=200",
        "transformers.batch_size=1",
        "runner.experiment_timeout_seconds=6",
        "hydra.run.dir=run",
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    status = read(tmp_path / "run" / "status.json")
    assert status["error_type"] == "ExperimentTimeout" and status["exit_reason"] == "timeout"
    assert "6 s" in status["message"] and not (tmp_path / "run" / "result.json").exists()


def test_runner_from_the_environment_wins(tiny_model_path, tmp_path):
    proc = run_llem(tmp_path, "runner.kind=process", "hydra.run.dir=run", env={"LLEM_RUNNER_TRANSFORMERS": "inline"})
    assert proc.returncode == 0, proc.stderr
    assert read(tmp_path / "run" / "status.json")["runner"] == "inline (from $LLEM_RUNNER_TRANSFORMERS)"


def test_invalid_runner_exits_2(tiny_model_path, tmp_path):
    proc = run_llem(tmp_path, "runner.kind=dockr", "hydra.run.dir=run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "runner.kind: invalid runner 'dockr'" in proc.stderr


def test_a_killed_supervisor_takes_its_worker_and_the_workers_children_along(tmp_path):
    """SIGKILL of the task process (a killed study) must not leave a worker holding a GPU."""
    pids = tmp_path / "pids"
    worker = (
        "import os, subprocess, sys, time\n"
        "from llem.worker import stop_with_the_supervisor\n"
        "stop_with_the_supervisor()\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)\n"
    )
    supervisor = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from llem.runners.supervise import Supervisor\n"
        "os.environ['LLEM_SUPERVISOR_PID'] = str(os.getpid())\n"
        f"Supervisor([sys.executable, '-c', {worker!r}], Path({str(tmp_path / 'log')!r}), echo=None).run()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", supervisor])
    deadline = time.monotonic() + 60
    while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    worker_pid, child_pid = map(int, pids.read_text().split())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while (alive(worker_pid) or alive(child_pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(worker_pid) and not alive(child_pid)


def test_a_timeout_of_zero_or_less_exits_2(tiny_model_path, tmp_path):
    proc = run_llem(tmp_path, "runner.experiment_timeout_seconds=0", "hydra.run.dir=run")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "runner.experiment_timeout_seconds: must be above 0 seconds" in proc.stderr
