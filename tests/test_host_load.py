"""Host CPU load around the timed window: the record, the busy rule and its warning, on real /proc."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from llem.telemetry.host import HostLoadProbe, HostSnapshot, host_load, usable_cpus


def snap(at_s: float, load: float | None, busy_s: float | None, own_s: float) -> HostSnapshot:
    return HostSnapshot(monotonic_s=at_s, load_avg_1m=load, runnable=1, busy_s=busy_s, steal_s=0.0, own_cpu_s=own_s)


def test_quiet_host_gives_no_warning():
    record, warnings = host_load(snap(0.0, 0.5, 100.0, 10.0), snap(10.0, 1.5, 118.0, 27.0), n_cpus=2)
    assert warnings == [] and record.busy is False
    assert record.busy_cpu_s == 18.0 and record.own_cpu_s == 17.0 and record.other_cpu_s == 1.0
    assert record.other_cpu_share == pytest.approx(1.0 / 20.0) and record.window_s == 10.0


def test_other_processes_taking_the_cpus_make_the_host_busy():
    record, (warning,) = host_load(snap(0.0, 1.0, 100.0, 10.0), snap(10.0, 1.0, 120.0, 15.0), n_cpus=2)
    assert record.busy and record.other_cpu_share == pytest.approx(0.75)
    assert warning.startswith("host busy: other processes used 75% of the usable CPUs' time")


def test_load_elsewhere_on_the_host_does_not_make_the_usable_cpus_busy():
    """A high host-wide load average (other CPUs, or this run's own threads) with the usable CPUs free."""
    record, warnings = host_load(snap(0.0, 40.0, 100.0, 10.0), snap(10.0, 40.0, 119.0, 28.0), n_cpus=2)
    assert warnings == [] and record.busy is False and record.load_avg_1m_end == 40.0


def test_without_cpu_times_a_load_average_above_the_usable_cpus_makes_the_host_busy():
    record, (warning,) = host_load(snap(0.0, 10.0, None, 0.0), snap(1.0, 9.0, None, 1.0), n_cpus=2)
    assert record.busy and "1-min load average 10.0 above the 2 usable CPUs" in warning
    assert record.other_cpu_s is None and record.other_cpu_share is None  # /proc/stat unreadable: null, not 0


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc/stat")
def test_real_processes_of_others_make_the_host_busy():
    """Spinning processes that are not this process's descendants (orphaned at once) fill every usable CPU."""
    probe = HostLoadProbe()
    spinners = 2 * len(usable_cpus())
    loop = "timeout 2 sh -c 'while :; do :; done' &"
    subprocess.run(["sh", "-c", " ".join([loop] * spinners)], check=True)  # returns at once; the loops live on
    time.sleep(2.2)
    record, warnings = probe.finish()
    assert record.usable_cpus == len(usable_cpus()) and record.load_avg_1m_start is not None
    assert record.own_cpu_s < 0.5 and record.other_cpu_share > 0.5
    assert record.busy and any("other processes used" in w for w in warnings)
