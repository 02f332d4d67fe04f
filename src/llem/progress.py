"""Progress of warm-up and measurement: prompts done of the total, rate and ETA, as log lines.

The measurement runs in a worker whose output is a pipe: its supervisor copies it line by line into
``worker.log`` (and so into a Slurm log or captured output) and echoes it. Progress is therefore a
readable line, written when another 10% of the prompts is done or 30 s have passed since the last
line (never two within 5 s), and one line at the end. When the supervisor echoes to a terminal
it starts the worker with ``LLEM_PROGRESS=live``: the worker then also writes a *live* line up to
once a second, which the supervisor shows in place (:class:`TerminalEcho`) and leaves out of
``worker.log``.

Why this does not bias the timing: engines call :meth:`Progress.update` only where they already stop
to record time (the end of a batch, or a decoding step they already synchronise and timestamp), so
it adds no device synchronisation. An update that writes nothing costs one clock read and a few
comparisons (under a microsecond, against milliseconds per decoding step); a line is formatted
and written at most once a second; and the final line is written by :meth:`Progress.finish`, which
the measurement calls after its timed window has closed.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.text import Text

# The loggers of progress lines: periodic and final lines, and live lines (a terminal's, transient).
LOGGER = "llem.progress"
LIVE_LOGGER = "llem.progress.live"
# Set to "live" in the worker's environment when its output is echoed to a terminal.
MODE_VARIABLE = "LLEM_PROGRESS"


@dataclass(frozen=True)
class Cadence:
    """When a progress line is due: every ``every_s`` seconds, or each time another ``step`` of the
    work is done, but never twice within ``min_gap_s`` seconds."""

    every_s: float
    step: float
    min_gap_s: float


LOG_CADENCE = Cadence(every_s=30.0, step=0.10, min_gap_s=5.0)
LIVE_CADENCE = Cadence(every_s=1.0, step=1.0, min_gap_s=1.0)


class Throttle:
    """Decides, from the clock and the fraction done, whether a line is due under a :class:`Cadence`."""

    def __init__(self, cadence: Cadence, now: float) -> None:
        self.cadence = cadence
        self.last_s, self.last_fraction = now, 0.0

    def due(self, now: float, fraction: float) -> bool:
        """True (and the line counted as written) when a line is due at ``now`` (seconds)."""
        waited = now - self.last_s
        if waited < self.cadence.min_gap_s:
            return False
        if waited < self.cadence.every_s and fraction - self.last_fraction < self.cadence.step - 1e-9:
            return False
        self.last_s, self.last_fraction = now, fraction
        return True


class Progress:
    """Progress of one phase (``warm-up``, ``measuring``) over ``total`` prompts, reported as log lines.

    ``at_most``: ``total`` is an upper bound (a warm-up that stops once latency is steady). ``live``:
    also write live lines for a terminal (default: from ``$LLEM_PROGRESS``). ``clock`` returns seconds.
    """

    def __init__(
        self,
        phase: str,
        total: int,
        *,
        at_most: bool = False,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.phase, self.total, self.at_most = phase, total, at_most
        self.clock = clock
        self.started_s = self.updated_s = clock()
        self.done, self.tokens, self.fraction = 0, None, 0.0
        self.batch: tuple[int, int] | None = None
        self.step: tuple[int, int] | None = None
        self.note = ""
        self.logged = Throttle(LOG_CADENCE, self.started_s)
        live = os.environ.get(MODE_VARIABLE) == "live" if live is None else live
        self.shown = Throttle(LIVE_CADENCE, self.started_s) if live else None

    def update(
        self,
        done: int,
        tokens: int | None = None,
        *,
        fraction: float | None = None,
        batch: tuple[int, int] | None = None,
        step: tuple[int, int] | None = None,
        note: str = "",
    ) -> None:
        """Record the state so far and write a line if one is due.

        ``done``: prompts finished; ``tokens``: tokens generated so far, as the engine knows them
        exactly (transformers: by the finished batches; vLLM: delivered to every request; None: not counted);
        ``fraction``: of the whole work done, when finer than ``done / total`` (a batch part-way);
        ``batch``, ``step``: (index from 1, count) of the batch and its decoding step, when known.
        Once every prompt is done nothing is written: :meth:`finish` writes the last line.
        """
        now = self.clock()
        self.done, self.tokens, self.updated_s = done, tokens, now
        self.fraction = fraction if fraction is not None else done / self.total if self.total else 1.0
        self.batch, self.step, self.note = batch, step, note
        if done >= self.total:
            return
        if self.logged.due(now, self.fraction):
            logging.getLogger(LOGGER).info(self.line())
        elif self.shown is not None and self.shown.due(now, self.fraction):
            logging.getLogger(LIVE_LOGGER).info(self.line())

    def finish(self) -> None:
        """Write the final line (call it after the timed window): counts, rates and time taken."""
        self.batch = self.step = None
        logging.getLogger(LOGGER).info(self.line(final=True))

    def line(self, final: bool = False) -> str:
        """One line, e.g. ``measuring: 3/10 prompts (30%), elapsed 2.0 s, ETA 4.7 s, batch 4/10 step
        1/32, 96 tokens, 1.50 prompts/s, 48.0 tokens/s``."""
        elapsed = self.updated_s - self.started_s
        if self.at_most:
            counted = f"{self.done} prompts (at most {self.total})"
        else:
            counted = f"{self.done}/{self.total} prompts ({100 * self.fraction:.0f}%)"
        parts = [f"{self.phase}: {counted}"]
        if final:
            parts.append(f"took {duration_text(elapsed)}")
        else:
            parts.append(f"elapsed {duration_text(elapsed)}")
            if 0 < self.fraction < 1:
                eta = duration_text(elapsed * (1 - self.fraction) / self.fraction)
                parts.append(f"ETA {'at most ' if self.at_most else ''}{eta}")
        if self.batch:
            step = f" step {self.step[0]}/{self.step[1]}" if self.step else ""
            parts.append(f"batch {self.batch[0]}/{self.batch[1]}{step}")
        if self.note:
            parts.append(self.note)
        if self.tokens:
            parts.append(f"{self.tokens} tokens")
        if elapsed > 0 and self.done:
            parts.append(f"{rate_text(self.done / elapsed)} prompts/s")
        if elapsed > 0 and self.tokens:
            parts.append(f"{rate_text(self.tokens / elapsed)} tokens/s")
        return ", ".join(parts)


def rate_text(per_s: float) -> str:
    """A rate with three significant digits below 100, whole above: ``0.0417``, ``2.50``, ``48.0``, ``1234``."""
    return f"{per_s:.0f}" if round(per_s, 1) >= 100 else f"{per_s:#.3g}"


def duration_text(seconds: float) -> str:
    """A duration in seconds as ``12.3 s`` below a minute, else ``H:MM:SS``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def worker_environment(echo: IO[str] | None) -> dict[str, str]:
    """The progress mode for a worker whose output is echoed to ``echo``: live lines for a terminal."""
    return {MODE_VARIABLE: "live" if echo is not None and echo.isatty() else "log"}


def is_live_line(line: str) -> bool:
    """Whether a worker's output line is a live progress line (shown in place, not kept in its log)."""
    return f" {LIVE_LOGGER}: " in line


class TerminalEcho:
    """Echo a worker's output lines to a terminal, its live progress line in place at the bottom.

    A live line replaces the previous one (a transient rich live display); any other line clears it
    and is written as it came.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.console = Console(file=stream, highlight=False)
        self.live: Live | None = None

    def write(self, line: str) -> None:
        if is_live_line(line):
            text = Text(line.split(f" {LIVE_LOGGER}: ", 1)[1].rstrip("\n"), no_wrap=True, overflow="ellipsis")
            if self.live is None:
                self.live = Live(
                    text, console=self.console, transient=True, auto_refresh=False,
                    redirect_stdout=False, redirect_stderr=False,
                )  # fmt: skip
                self.live.start(refresh=True)
            else:
                self.live.update(text, refresh=True)
            return
        self.close()
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        """Clear the live line, if one is shown."""
        if self.live is not None:
            self.live.stop()
            self.live = None
