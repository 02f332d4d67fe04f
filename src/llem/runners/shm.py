"""Shared-memory segments a killed worker leaves behind (vLLM's EngineCore and its workers).

vLLM's processes talk through POSIX shared memory (``/dev/shm/psm_*``) and multiprocessing
semaphores (``sem.mp-*``); a process group killed with SIGKILL cannot unlink them. llem notes what
``/dev/shm`` held before a worker started and, once the worker's group is gone, unlinks the new
segments of those kinds that no living process still has open or mapped.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

SHM = Path("/dev/shm")
# Name prefixes of segments made by Python's multiprocessing (shared_memory, semaphores) and by vLLM.
PREFIXES = ("psm_", "sem.mp-", "vllm")


def snapshot(root: Path = SHM) -> frozenset[str]:
    """The names in ``root`` now (empty where there is no such folder)."""
    try:
        return frozenset(os.listdir(root))
    except OSError:
        return frozenset()


def _open_anywhere(paths: set[str]) -> set[str]:
    """Which of ``paths`` a living process has open (a file descriptor) or mapped."""
    used: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target in paths:
                        used.add(target)
        with contextlib.suppress(OSError):
            maps = (proc / "maps").read_text()
            used.update(p for p in paths if p in maps)
    return used


def remove_leftovers(before: frozenset[str], root: Path = SHM) -> list[str]:
    """Unlink the segments made since ``before`` that nobody uses any more; returns their names."""
    new = {str(root / name) for name in snapshot(root) - before if name.startswith(PREFIXES)}
    removed = []
    for path in sorted(new - _open_anywhere(new)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(os.path.basename(path))
    return removed


def group_members(pgid: int) -> list[int]:
    """Living (not zombie) processes of process group ``pgid``."""
    members = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            # /proc/PID/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces, so split after ')'
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(proc.name))
    return members


def wait_for_group_exit(pgid: int, timeout_s: float = 2.0, exclude: int | None = None) -> None:
    """Poll (every 50 ms, at most ``timeout_s``) until group ``pgid`` has no living member but ``exclude``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and [p for p in group_members(pgid) if p != exclude]:
        time.sleep(0.05)
