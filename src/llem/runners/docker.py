"""The ``docker`` runner: the job's worker in a container of its engine's image.

The container sees the host paths it needs at the same paths (job folder, llem's cache, the
Hugging Face cache, a local model folder or prompt file), so ``experiment.json`` needs no
rewriting. GPUs follow the job's ``CUDA_VISIBLE_DEVICES``; ``HF_TOKEN`` is passed by name only,
so its value never appears in a command line or a file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import llem
from llem.config.schema import ExperimentConfig, RunnerConfig
from llem.errors import LlemError
from llem.paths import cache_dir
from llem.progress import worker_environment
from llem.runners.supervise import Supervisor, WorkerExit

# Where llem's images live: <registry>/<engine>:v<llem version> (docker/<engine>.Dockerfile).
IMAGE_REGISTRY = "ghcr.io/llem"
# Secrets handed to the container by name (docker copies the value from its own environment).
SECRET_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


class DockerUnavailableError(LlemError):
    """The docker runner was chosen but Docker cannot run containers here."""


def default_image(engine: str, images: dict[str, str] | None = None) -> str:
    """The image for ``engine``: the user config's ``images.<engine>``, else llem's own for this version."""
    return (images or {}).get(engine) or f"{IMAGE_REGISTRY}/{engine}:v{llem.__version__}"


def gpu_arguments(visible_devices: str | None) -> list[str]:
    """``--gpus`` for the job's devices: ``CUDA_VISIBLE_DEVICES`` indices, UUIDs or MIG ids; unset -> all."""
    if visible_devices is None:
        return ["--gpus", "all"]
    devices = [d.strip() for d in visible_devices.split(",") if d.strip()]
    if not devices or devices == ["-1"]:
        return []  # the job was given no GPU
    return ["--gpus", '"device=' + ",".join(devices) + '"']


def host_paths(experiment: ExperimentConfig, job_dir: Path, hf_home: Path) -> list[Path]:
    """Host folders the worker reads or writes, mounted at the same paths in the container."""
    paths = [job_dir.resolve(), cache_dir().resolve(), hf_home.resolve()]
    for candidate in (experiment.model, experiment.dataset.source):
        path = Path(candidate).expanduser()
        if path.exists():
            paths.append(path.resolve() if path.is_dir() else path.resolve().parent)
    unique: list[Path] = []
    for path in paths:
        if not any(path == kept or path.is_relative_to(kept) for kept in unique):
            unique = [kept for kept in unique if not kept.is_relative_to(path)] + [path]
    return unique


def hugging_face_home(model_cache_dir: str | None) -> Path:
    """The Hugging Face cache: the user config's ``output.model_cache_dir``, ``$HF_HOME``, or the default."""
    if model_cache_dir:
        return Path(model_cache_dir).expanduser()
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")


def docker_command(
    experiment: ExperimentConfig,
    job_dir: Path,
    image: str,
    *,
    container_name: str,
    visible_devices: str | None,
    hf_home: Path,
    environ: dict[str, str],
) -> list[str]:
    """The ``docker run`` command that measures the job in ``job_dir`` inside ``image``."""
    command = [
        "docker", "run", "--rm",
        "--name", container_name,
        "--label", f"llem.job={job_dir.resolve()}",
        "--ipc=host",  # engines share tensors through /dev/shm; the container's 64 MB default is too small
        "--user", f"{os.getuid()}:{os.getgid()}",
        "--workdir", str(Path.cwd()),
        *gpu_arguments(visible_devices),
    ]  # fmt: skip
    for path in host_paths(experiment, job_dir, hf_home):
        command += ["--volume", f"{path}:{path}"]
    env = {
        "HOME": "/tmp",
        "HF_HOME": str(hf_home.resolve()),
        "LLEM_CACHE_DIR": str(cache_dir().resolve()),
        "PYTHONUNBUFFERED": "1",
        **worker_environment(sys.stderr),  # its output is echoed here: live progress lines for a terminal
    }
    for key, value in env.items():
        command += ["--env", f"{key}={value}"]
    for secret in SECRET_ENV:
        if environ.get(secret):
            command += ["--env", secret]
    return [*command, image, str(job_dir.resolve())]


def check_docker() -> None:
    """A clear error when the docker CLI is missing or no daemon answers."""
    if shutil.which("docker") is None:
        raise DockerUnavailableError(
            "runner docker: the docker command is not installed. Install Docker, or run on the host with "
            "runner.kind=process"
        )
    probe = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=30
    )
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["no answer"])[-1]
        raise DockerUnavailableError(
            f"runner docker: no Docker daemon is reachable ({reason}). Start Docker, or run on the host "
            "with runner.kind=process"
        )


def run_docker(
    job_dir: Path,
    experiment: ExperimentConfig,
    image: str | None,
    settings: RunnerConfig,
    on_start: Callable[[int], None] | None = None,
) -> WorkerExit:
    """Measure the job in a container, supervised like a local worker; the container is removed after."""
    from llem.user_config import load_user_config

    check_docker()
    user = load_user_config()
    image = image or default_image(experiment.engine.value, user.images)
    name = f"llem-{job_dir.resolve().name}-{os.getpid()}"
    command = docker_command(
        experiment,
        job_dir,
        image,
        container_name=name,
        visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        hf_home=hugging_face_home(user.output.model_cache_dir),
        environ=dict(os.environ),
    )
    (job_dir / "docker_command.txt").write_text(" ".join(command) + "\n", encoding="utf-8")
    return Supervisor(
        command,
        job_dir / "worker.log",
        timeout_s=settings.experiment_timeout_seconds,
        silence_s=settings.silence_timeout_seconds,
        on_start=on_start,
        on_stop=lambda: subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60),
    ).run()
