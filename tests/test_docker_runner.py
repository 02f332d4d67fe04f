"""The docker runner: the exact ``docker run`` commands, the image definitions, and a missing daemon.

There is no Docker daemon on development and CI machines, so the images are checked statically and
the commands are checked as built; a job asking for docker there must fail clearly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import llem
from llem.config.load import load_experiment
from llem.runners.docker import default_image, docker_command, gpu_arguments, host_paths

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
ENGINES = ("transformers", "vllm", "tensorrt")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "llem-cache"
    folder.mkdir()
    monkeypatch.setenv("LLEM_CACHE_DIR", str(folder))
    return folder


def build(tmp_path: Path, environ: dict[str, str] | None = None, visible: str | None = "0", **experiment) -> list[str]:
    job = tmp_path / "study" / "0000_abc_c0"
    job.mkdir(parents=True, exist_ok=True)
    return docker_command(
        load_experiment({"model": "llem-tiny", **experiment}),
        job,
        "ghcr.io/llem/transformers:v1",
        container_name="llem-0000_abc_c0-1",
        visible_devices=visible,
        hf_home=tmp_path / "hf",
        environ=environ or {},
    )


def option_values(command: list[str], option: str) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command[:-1]) if arg == option]


def test_command_runs_the_worker_on_the_job_folder(cache, tmp_path):
    command = build(tmp_path)
    job = str((tmp_path / "study" / "0000_abc_c0").resolve())
    assert command[:3] == ["docker", "run", "--rm"] and command[-2:] == ["ghcr.io/llem/transformers:v1", job]
    assert option_values(command, "--name") == ["llem-0000_abc_c0-1"]
    assert f"llem.job={job}" in option_values(command, "--label")
    assert "--ipc=host" in command  # /dev/shm shared with the host, not docker's 64 MB
    assert option_values(command, "--user") == [f"{os.getuid()}:{os.getgid()}"]


def test_job_cache_and_model_cache_are_mounted_at_the_same_paths(cache, tmp_path):
    volumes = option_values(build(tmp_path), "--volume")
    for path in (tmp_path / "study" / "0000_abc_c0", cache, tmp_path / "hf"):
        resolved = str(path.resolve())
        assert f"{resolved}:{resolved}" in volumes
    env = option_values(build(tmp_path), "--env")
    assert f"HF_HOME={(tmp_path / 'hf').resolve()}" in env and f"LLEM_CACHE_DIR={cache.resolve()}" in env


def test_a_local_model_folder_and_prompt_file_are_mounted(cache, tmp_path):
    model = tmp_path / "models" / "my-model"
    model.mkdir(parents=True)
    prompts = tmp_path / "data" / "prompts.jsonl"
    prompts.parent.mkdir()
    prompts.write_text('{"prompt": "hi"}\n')
    volumes = option_values(build(tmp_path, model=str(model), dataset={"source": str(prompts)}), "--volume")
    assert f"{model.resolve()}:{model.resolve()}" in volumes
    assert f"{prompts.parent.resolve()}:{prompts.parent.resolve()}" in volumes


def test_nested_paths_are_mounted_once(cache, tmp_path):
    inner = cache / "models" / "llem-tiny"
    inner.mkdir(parents=True)
    paths = host_paths(load_experiment({"model": str(inner)}), tmp_path / "job", tmp_path / "hf")
    assert cache.resolve() in paths and inner.resolve() not in paths


def test_hf_token_is_passed_by_name_only(cache, tmp_path):
    command = build(tmp_path, environ={"HF_TOKEN": "hf_secret_value"})
    assert "HF_TOKEN" in option_values(command, "--env")
    assert not any("hf_secret_value" in arg for arg in command)
    assert "HF_TOKEN" not in option_values(build(tmp_path), "--env")  # not set: not passed


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        (None, ["--gpus", "all"]),
        ("0", ["--gpus", '"device=0"']),
        ("2, 3", ["--gpus", '"device=2,3"']),
        ("GPU-8a1b2c3d-0000-1111-2222-333344445555", ["--gpus", '"device=GPU-8a1b2c3d-0000-1111-2222-333344445555"']),
        ("MIG-5f6e7d8c-aaaa-bbbb-cccc-ddddeeeeffff", ["--gpus", '"device=MIG-5f6e7d8c-aaaa-bbbb-cccc-ddddeeeeffff"']),
        ("", []),
        ("-1", []),
    ],
)
def test_gpus_follow_cuda_visible_devices(visible, expected):
    assert gpu_arguments(visible) == expected


def test_image_names_follow_engine_and_version():
    assert default_image("vllm") == f"ghcr.io/llem/vllm:v{llem.__version__}"
    assert default_image("vllm", {"vllm": "my.registry/vllm:custom"}) == "my.registry/vllm:custom"
    assert default_image("tensorrt", {"vllm": "x"}) == f"ghcr.io/llem/tensorrt:v{llem.__version__}"


# ---------------------------------------------------------------------------------------------
# Image definitions (unbuilt here: no Docker daemon)
# ---------------------------------------------------------------------------------------------


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_has_an_image_that_installs_llem_and_runs_the_worker(engine):
    steps = instructions(DOCKER / f"{engine}.Dockerfile")
    assert steps[0][0] == "FROM" and ":" in steps[0][1]  # a pinned base image
    copied = " ".join(args for kind, args in steps if kind == "COPY")
    assert all(part in copied for part in ("pyproject.toml", "src", "conf"))
    assert any(kind == "RUN" and re.search(r"pip install \"?\.\[", args) for kind, args in steps)
    (entrypoint,) = [json.loads(args) for kind, args in steps if kind == "ENTRYPOINT"]
    assert entrypoint[-2:] == ["-m", "llem.worker"]


def test_the_build_context_holds_what_the_images_copy():
    allowed = (ROOT / ".dockerignore").read_text().split()
    assert "*" in allowed and {"!pyproject.toml", "!README.md", "!conf/", "!src/"} <= set(allowed)


# ---------------------------------------------------------------------------------------------
# No daemon here: a clear error, recorded, no traceback
# ---------------------------------------------------------------------------------------------


def daemon_running() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(daemon_running(), reason="a Docker daemon is running here")
def test_docker_runner_without_a_daemon_fails_clearly(tiny_model_path, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "llem", "model=llem-tiny", "runner.kind=docker", "hydra.run.dir=run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["error_type"] == "DockerUnavailableError" and "runner.kind=process" in status["message"]
    assert "runner docker:" in proc.stderr


def test_the_container_gets_the_progress_mode_of_the_console_it_is_echoed_to(cache, tmp_path, monkeypatch):
    class Console:
        def __init__(self, terminal: bool) -> None:
            self.terminal = terminal

        def isatty(self) -> bool:
            return self.terminal

    for terminal, mode in ((False, "log"), (True, "live")):
        monkeypatch.setattr(sys, "stderr", Console(terminal))
        assert f"LLEM_PROGRESS={mode}" in option_values(build(tmp_path), "--env")
