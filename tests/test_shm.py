"""The members of a worker's process group, and the shared memory they hold (unlinked when it is killed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from llem.runners import shm

HOLD = """
import mmap, sys, time
files = [open(path, "r+b") for path in sys.argv[1:]]
maps = [mmap.mmap(f.fileno(), 1) for f in files[1:]]  # the others mapped as well as open
print("ready", flush=True)
time.sleep(60)
"""


def test_only_the_groups_segments_of_multiprocessing_kinds_are_found_and_removed(tmp_path):
    for name in ("psm_held", "sem.mp-mapped", "driver_file", "psm_nobodys"):
        (tmp_path / name).write_bytes(b"x")
    held = [str(tmp_path / n) for n in ("psm_held", "sem.mp-mapped", "driver_file")]
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, *held], start_new_session=True, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        found = shm.segments_of(shm.group_members(child.pid), root=tmp_path)
    finally:
        child.kill()
        child.wait()
    assert found == {str(tmp_path / "psm_held"), str(tmp_path / "sem.mp-mapped")}
    assert sorted(shm.remove(found)) == ["psm_held", "sem.mp-mapped"]
    assert sorted(os.listdir(tmp_path)) == ["driver_file", "psm_nobodys"]
    assert shm.remove(found) == []  # already gone: nothing to do, no error


def test_group_members_lists_the_living_processes_of_a_group():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        assert shm.group_members(child.pid) == [child.pid]
    finally:
        child.kill()
        child.wait()
    assert shm.group_members(child.pid) == []
    start = time.monotonic()
    shm.wait_for_exit([child.pid], timeout_s=5)  # returns at once: it is gone
    assert time.monotonic() - start < 5
    assert not shm.is_resource_tracker(child.pid) and not shm.is_resource_tracker(os.getpid())
