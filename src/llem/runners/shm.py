"""A worker's process group, and the shared memory it would leave behind when killed.

vLLM's EngineCore and worker processes talk through POSIX shared memory (``/dev/shm/psm_*``) and
multiprocessing semaphores (``/dev/shm/sem.mp-*``); a process group killed with SIGKILL cannot unlink
them. So before the group is killed, llem notes the ``/dev/shm`` files its members have open or
mapped, and unlinks them once the members are gone; and it spares the group's multiprocessing
resource tracker, which unlinks what was registered with it (named semaphores nobody maps any
more) once the processes that used them are gone. Only the group's own processes are read: a
segment nobody in the group holds is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

SHM = Path("/dev/shm")
# Names Python's multiprocessing gives shared memory and semaphores (what vLLM's processes use); other
# files a member holds (a driver's or a daemon's) are never unlinked.
PREFIXES = ("psm_", "sem.mp-")


def _state_and_group(pid: int) -> tuple[str, int] | None:
    """``(state, process group)`` from /proc/PID/stat; None for a process that is gone."""
    try:
        # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after the last ')'
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[2])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    found = _state_and_group(pid)
    return found is not None and found[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Living (not zombie) processes of process group ``pgid``."""
    members = []
    for proc in Path("/proc").iterdir():
        found = _state_and_group(int(proc.name)) if proc.name.isdigit() else None
        if found is not None and found[0] != "Z" and found[1] == pgid:
            members.append(int(proc.name))
    return members


def is_resource_tracker(pid: int) -> bool:
    """Whether ``pid`` is a multiprocessing resource tracker: it unlinks the semaphores and shared memory
    registered with it once every process that could use them is gone, so it is left to finish."""
    try:
        return b"multiprocessing.resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def segments_of(pids: list[int], root: Path = SHM) -> set[str]:
    """Shared-memory files under ``root`` (names in :data:`PREFIXES`) that the processes ``pids`` have open
    (a file descriptor) or mapped."""
    prefix = f"{root}/"
    found: set[str] = set()
    for pid in pids:
        proc = Path(f"/proc/{pid}")
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    found.add(os.readlink(fd).removesuffix(" (deleted)"))
        with contextlib.suppress(OSError):
            for line in (proc / "maps").read_text().splitlines():
                parts = line.split(maxsplit=5)  # address perms offset device inode [path]
                path = parts[5] if len(parts) == 6 else ""
                found.add(path.removesuffix(" (deleted)"))
    return {p for p in found if p.startswith(prefix) and os.path.basename(p).startswith(PREFIXES)}


def remove(paths: set[str]) -> list[str]:
    """Unlink ``paths`` (already gone or not ours to remove: left alone); the names removed."""
    removed = []
    for path in sorted(paths):
        with contextlib.suppress(OSError):
            os.unlink(path)
            removed.append(os.path.basename(path))
    return removed


def wait_for_exit(pids: list[int], timeout_s: float = 2.0) -> None:
    """Poll (every 50 ms, at most ``timeout_s``) until none of ``pids`` is alive (zombies count as gone)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)


def kill(pids: list[int]) -> set[str]:
    """SIGKILL ``pids`` and wait for them; returns the shared memory they held (noted first), for
    :func:`remove`."""
    segments = segments_of(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_for_exit(pids)
    return segments
