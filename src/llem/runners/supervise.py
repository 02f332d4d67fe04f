"""Run a worker command in its own process group and watch it without spinning.

The waiting parent blocks on an event set by a thread in ``waitpid``; it wakes only when the
worker exits or when a timeout is due. The worker's output is copied line by line to its log
file (and echoed), which is also how the silence timeout sees it is alive. On a timeout or
Ctrl-C the whole process group is stopped (SIGTERM, then SIGKILL after a grace period), since
engines start children of their own; leftover group members are killed after a normal exit too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from llem.progress import TerminalEcho, is_live_line
from llem.runners import shm

# Seconds a stopped worker gets between SIGTERM and SIGKILL.
GRACE_S = 10.0


@dataclass
class WorkerExit:
    """How a worker ended."""

    returncode: int | None  # None when it had to be killed and did not report one
    reason: str  # exited | timeout | silence | interrupted
    detail: str  # one line for status.json, e.g. "killed by SIGKILL"
    wall_s: float  # seconds from spawn to exit
    pid: int

    def facts(self) -> dict[str, Any]:
        """The worker's exit as recorded in ``status.json``."""
        return {"pid": self.pid, "exit_code": self.returncode, "wall_s": self.wall_s, "ended": self.detail}


class Supervisor:
    """Spawn ``command`` and supervise it until it ends.

    ``timeout_s`` bounds the whole run, ``silence_s`` the time without a line of output (None: no
    limit). ``on_start`` gets the worker's pid once it runs; ``on_stop`` runs after the process group
    is stopped (e.g. removing a container).
    """

    def __init__(
        self,
        command: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        timeout_s: float | None = None,
        silence_s: float | None = None,
        echo: IO[str] | None = sys.stderr,
        on_start: Callable[[int], None] | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.command = list(command)
        self.log_path = log_path
        self.env = env
        self.timeout_s, self.silence_s = timeout_s, silence_s
        self.echo = echo
        self.on_start, self.on_stop = on_start, on_stop
        self._last_output = 0.0
        self._exited = threading.Event()

    def run(self) -> WorkerExit:
        """Start the worker and block until it ends; re-raises KeyboardInterrupt after stopping it."""
        start = time.monotonic()
        self._last_output = start
        proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,  # its own process group: one signal reaches its children too
        )
        if self.on_start is not None:
            self.on_start(proc.pid)
        pump = threading.Thread(target=self._copy_output, args=(proc,), daemon=True)
        reaper = threading.Thread(target=lambda: (proc.wait(), self._exited.set()), daemon=True)
        pump.start()
        reaper.start()
        try:
            reason = self._wait(start)
        except KeyboardInterrupt:
            self._stop(proc)
            pump.join(timeout=5)
            raise
        if reason != "exited":
            self._stop(proc)
        _end_group(proc.pid)  # leftovers of a finished worker
        pump.join(timeout=5)
        return WorkerExit(
            proc.returncode, reason, self._detail(reason, proc.returncode), time.monotonic() - start, proc.pid
        )

    def _wait(self, start: float) -> str:
        """Block until the worker exits or a limit is reached; returns why the wait ended."""
        while True:
            now = time.monotonic()
            deadlines = []
            if self.timeout_s is not None:
                deadlines.append((start + self.timeout_s, "timeout"))
            if self.silence_s is not None:
                deadlines.append((self._last_output + self.silence_s, "silence"))
            if not deadlines:
                self._exited.wait()
                return "exited"
            due, reason = min(deadlines)
            if due <= now:
                return reason
            if self._exited.wait(timeout=due - now):
                return "exited"

    def _copy_output(self, proc: subprocess.Popen) -> None:
        """Copy the worker's lines to its log and the echo; live progress lines (a terminal's) are
        shown in place and not logged (see :mod:`llem.progress`)."""
        assert proc.stdout is not None
        echo = self.echo
        terminal = TerminalEcho(echo) if echo is not None and echo.isatty() else None
        with open(self.log_path, "ab") as log:
            try:
                for line in iter(proc.stdout.readline, b""):
                    self._last_output = time.monotonic()
                    text = line.decode("utf-8", errors="replace")
                    if not is_live_line(text):
                        log.write(line)
                        log.flush()
                    if terminal is not None:
                        terminal.write(text)
                    elif echo is not None:
                        echo.write(text)
                        echo.flush()
            finally:
                if terminal is not None:
                    terminal.close()

    def _stop(self, proc: subprocess.Popen) -> None:
        """SIGTERM the worker's process group, SIGKILL it after the grace period; then unlink the shared
        memory its members held (the worker does so itself on SIGTERM; this covers a worker that cannot)."""
        segments = shm.segments_of(shm.group_members(proc.pid))
        _kill_group(proc.pid, signal.SIGTERM)
        if not self._exited.wait(timeout=GRACE_S):
            _kill_group(proc.pid, signal.SIGKILL)
            self._exited.wait(timeout=GRACE_S)
        _end_group(proc.pid)
        shm.remove(segments)
        if self.on_stop is not None:
            self.on_stop()

    def _detail(self, reason: str, returncode: int | None) -> str:
        if reason == "timeout":
            return f"stopped after the experiment timeout of {self.timeout_s:g} s"
        if reason == "silence":
            return f"stopped after {self.silence_s:g} s without output"
        if returncode is not None and returncode < 0:
            name = signal.Signals(-returncode).name
            hint = " (out of memory?)" if name == "SIGKILL" else ""
            return f"killed by {name}{hint}"
        return f"exit code {returncode}"


def _end_group(pgid: int) -> None:
    """SIGKILL what is left of the worker's group (an engine's orphaned children), and unlink the shared
    memory those held. A multiprocessing resource tracker, still cleaning up, gets a few seconds first."""
    members = shm.group_members(pgid)
    if members and all(shm.is_resource_tracker(pid) for pid in members):
        shm.wait_for_exit(members, timeout_s=5.0)
        members = shm.group_members(pgid)
    shm.remove(shm.kill(members))


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
