"""How busy the host's CPUs were around the timed window: load average and other processes' CPU time.

Read at the window's two ends only (a few small /proc reads): the 1-minute load average
(``os.getloadavg``), the runnable processes (``procs_running`` in /proc/stat), the busy and stolen
time of the CPUs this process may use (their /proc/stat lines) and the CPU time of this process and
its children (psutil). Busy time of those CPUs not spent by this process tree is other processes'
(or the kernel's): contention that slows every figure down. That share decides whether the host
was busy; the load average, which counts the whole host (CPUs outside this process's affinity, and
this process's own threads, included), decides only where /proc/stat cannot be read.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

from llem.results.schema import HostLoad

PROC_STAT = "/proc/stat"
# Other processes using more than this share of the usable CPUs' time make the host busy.
BUSY_OTHER_SHARE = 0.25
# /proc/stat cpu line fields (clock ticks): user nice system idle iowait irq softirq steal
IDLE_FIELDS = (3, 4)
STEAL_FIELD = 7
BUSY_FIELDS = (0, 1, 2, 5, 6)  # guest time is already inside user and nice


@dataclass
class HostSnapshot:
    """The counters at one instant; None where this system does not provide them."""

    monotonic_s: float
    load_avg_1m: float | None
    runnable: int | None
    busy_s: float | None  # non-idle time of the usable CPUs since boot
    steal_s: float | None
    own_cpu_s: float  # user + system time of this process and its live children


def usable_cpus() -> list[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def _proc_stat(cpus: list[int]) -> tuple[int | None, float | None, float | None]:
    """``(procs_running, busy_s, steal_s)`` of ``cpus`` from /proc/stat; Nones where unreadable."""
    try:
        with open(PROC_STAT, encoding="ascii") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None, None, None
    tick_s = 1.0 / os.sysconf("SC_CLK_TCK")
    wanted = {f"cpu{c}" for c in cpus}
    runnable, busy, steal, seen = None, 0, 0, 0
    for line in lines:
        name, *values = line.split()
        if name == "procs_running":
            runnable = int(values[0])
        elif name in wanted:
            ticks = [int(v) for v in values]
            busy += sum(ticks[i] for i in BUSY_FIELDS if i < len(ticks))
            steal += ticks[STEAL_FIELD] if len(ticks) > STEAL_FIELD else 0
            seen += 1
    if seen != len(wanted):
        return runnable, None, None
    return runnable, busy * tick_s, steal * tick_s


def _own_cpu_s() -> float:
    """User + system seconds of this process, its finished children and its live descendants."""
    me = psutil.Process()
    times = me.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in me.children(recursive=True):
        try:
            t = child.cpu_times()
        except psutil.Error:  # gone meanwhile
            continue
        total += t.user + t.system
    return total


def snapshot(cpus: list[int]) -> HostSnapshot:
    runnable, busy_s, steal_s = _proc_stat(cpus)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return HostSnapshot(time.monotonic(), load, runnable, busy_s, steal_s, _own_cpu_s())


class HostLoadProbe:
    """A snapshot when made and one at :meth:`finish`: the record and its warning for the interval between."""

    def __init__(self) -> None:
        self.cpus = usable_cpus()
        self.first = snapshot(self.cpus)

    def finish(self) -> tuple[HostLoad, list[str]]:
        last = snapshot(self.cpus)
        return host_load(self.first, last, len(self.cpus))


def host_load(first: HostSnapshot, last: HostSnapshot, n_cpus: int) -> tuple[HostLoad, list[str]]:
    """The ``host_load`` record of the interval from ``first`` to ``last``, and a warning when it was busy."""
    window_s = last.monotonic_s - first.monotonic_s
    own_s = max(0.0, last.own_cpu_s - first.own_cpu_s)
    busy_s = steal_s = other_s = share = None
    if first.busy_s is not None and last.busy_s is not None:
        busy_s = last.busy_s - first.busy_s
        other_s = max(0.0, busy_s - own_s)
        share = other_s / (window_s * n_cpus) if window_s > 0 else None
    if first.steal_s is not None and last.steal_s is not None:
        steal_s = last.steal_s - first.steal_s
    reasons = []
    loads = [x for x in (first.load_avg_1m, last.load_avg_1m) if x is not None]
    if share is not None and share > BUSY_OTHER_SHARE:
        reasons.append(f"other processes used {share:.0%} of the usable CPUs' time in the window")
    elif share is None and loads and max(loads) > n_cpus:  # no per-CPU times: the host-wide load must do
        reasons.append(f"1-min load average {max(loads):.1f} above the {n_cpus} usable CPUs")
    warnings = (
        [f"host busy: {'; '.join(reasons)}: throughput and latency are slower than on a quiet machine"]
        if reasons
        else []
    )
    record = HostLoad(
        usable_cpus=n_cpus,
        load_avg_1m_start=first.load_avg_1m,
        load_avg_1m_end=last.load_avg_1m,
        runnable_start=first.runnable,
        runnable_end=last.runnable,
        window_s=window_s,
        busy_cpu_s=busy_s,
        own_cpu_s=own_s,
        other_cpu_s=other_s,
        other_cpu_share=share,
        steal_s=steal_s,
        busy=bool(reasons),
    )
    return record, warnings
