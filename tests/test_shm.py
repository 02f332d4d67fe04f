"""Shared memory a killed engine leaves behind, and the members of a process group."""

from __future__ import annotations

import os
import subprocess
import sys

from llem.runners import shm


def test_only_new_unused_segments_of_known_kinds_are_removed(tmp_path):
    (tmp_path / "psm_old").write_bytes(b"x")
    before = shm.snapshot(tmp_path)
    for name in ("psm_new", "sem.mp-new", "psm_in_use", "someone_elses"):
        (tmp_path / name).write_bytes(b"x")
    with open(tmp_path / "psm_in_use", "rb"):
        removed = shm.remove_leftovers(before, tmp_path)
    assert sorted(removed) == ["psm_new", "sem.mp-new"]
    assert sorted(os.listdir(tmp_path)) == ["psm_in_use", "psm_old", "someone_elses"]


def test_group_members_lists_the_living_processes_of_a_group():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        assert shm.group_members(child.pid) == [child.pid]
    finally:
        child.kill()
        child.wait()
    assert shm.group_members(child.pid) == []
    shm.wait_for_group_exit(child.pid, timeout_s=0.1)  # returns at once for an empty group
