"""Advisory locks: one study at a time on the same GPUs (or on a host without GPUs), and one
``llem run`` at a time driving a study folder.

``flock`` locks belong to the open file description, so the kernel releases them when the holding
process ends for any reason, SIGKILL included: a crashed study never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llem.errors import LlemError
from llem.paths import cache_dir

# The lock file a study's driver holds in the study folder.
OWNER_FILE = "driver.lock"
# Study folders this process owns (resolved lock path -> nesting depth).
_OWNED: dict[str, int] = {}


class DeviceBusyError(LlemError):
    """Another study holds a lock on one of this study's devices."""


class StudyBusyError(LlemError):
    """Another ``llem run`` drives this study folder."""


def visible_devices() -> list[str]:
    """Lock names of the devices this process may use.

    With NVML: the physical GPUs behind ``CUDA_VISIBLE_DEVICES`` by UUID, so an index and a UUID
    naming one GPU share a lock, and MIG instances lock their whole GPU (whose energy they share).
    Without: the ``CUDA_VISIBLE_DEVICES`` entries as written, else ``host`` (CPU-only machines
    measure the whole host).
    """
    from llem.energy.base import SamplerUnavailable
    from llem.energy.devices import init_nvml, visible_gpus

    try:
        nvml = init_nvml()
    except SamplerUnavailable:
        return _named_in_environment()
    try:
        return sorted({f"gpu-{gpu.uuid}" for gpu in visible_gpus(nvml)})
    except SamplerUnavailable:  # no GPU visible, or an entry NVML cannot resolve
        return _named_in_environment()
    finally:
        nvml.nvmlShutdown()


def _named_in_environment() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return [f"gpu-{d.strip()}" for d in visible.split(",") if d.strip()] or ["host"]


@contextmanager
def device_locks(devices: list[str], lock_dir: Path | None = None) -> Iterator[list[Path]]:
    """Hold exclusive locks on all ``devices`` (all or none) for the duration of the block."""
    folder = lock_dir or cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    held: list[int] = []
    paths = [folder / f"{device}.lock" for device in devices]
    try:
        for path in paths:
            fd, holder = _try_lock(path)
            if fd is None:
                raise DeviceBusyError(
                    f"{path.stem} is in use by a study ({holder}); wait for it to finish, "
                    "or run with --no-lock if GPU scheduling is handled elsewhere"
                )
            held.append(fd)
        yield paths
    finally:
        for fd in held:
            _release(fd)


@contextmanager
def study_owner(folder: Path) -> Iterator[Path]:
    """Own the study ``folder`` for the duration of the block: a second ``llem run`` of it (``--resume``
    or not, ``--no-lock`` or not: that flag concerns devices), or a replay of its Hydra command, is
    refused with a :class:`StudyBusyError` instead of running its runs a second time in the same job
    folders. Re-entrant within one process (``llem run`` owns the folder, then its sweeper does)."""
    path = folder / OWNER_FILE
    key = str(path.resolve())
    if key in _OWNED:
        _OWNED[key] += 1
        try:
            yield path
        finally:
            _OWNED[key] -= 1
        return
    fd, holder = _try_lock(path)
    if fd is None:
        raise StudyBusyError(
            f"{folder} is being run by another llem run ({holder}); wait for it to finish, or stop it "
            "and resume the study"
        )
    _OWNED[key] = 1
    try:
        yield path
    finally:
        del _OWNED[key]
        _release(fd)


def _try_lock(path: Path) -> tuple[int | None, str]:
    """``(fd, "")`` holding an exclusive lock on ``path`` stamped with this process, or
    ``(None, holder)`` when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        return None, holder
    stamp = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
    os.ftruncate(fd, 0)
    os.pwrite(fd, stamp.encode(), 0)
    return fd, ""


def _release(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
