"""Device locks: exclusive, all-or-none, released when the holder dies (SIGKILL included)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from llem.study.locks import DeviceBusyError, device_locks, visible_devices

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from llem.study.locks import device_locks
    with device_locks(sys.argv[2:], Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(600)
    """
)


def hold(lock_dir: Path, *devices: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_dir), *devices], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_device_is_refused_with_the_holder(tmp_path):
    holder = hold(tmp_path, "gpu-0")
    try:
        with pytest.raises(DeviceBusyError, match=f"pid {holder.pid}"), device_locks(["gpu-0"], tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()


def test_sigkill_releases_the_lock(tmp_path):
    holder = hold(tmp_path, "gpu-0", "gpu-1")
    holder.kill()  # SIGKILL
    holder.wait()
    with device_locks(["gpu-0", "gpu-1"], tmp_path) as paths:
        assert len(paths) == 2


def test_all_or_none(tmp_path):
    holder = hold(tmp_path, "gpu-1")
    try:
        with pytest.raises(DeviceBusyError), device_locks(["gpu-0", "gpu-1"], tmp_path):
            pass
        with device_locks(["gpu-0"], tmp_path):  # gpu-0 was released when gpu-1 failed
            pass
    finally:
        holder.kill()
        holder.wait()


def test_visible_devices_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0, 2")
    assert visible_devices() == ["gpu-0", "gpu-2"]


def test_a_second_study_on_busy_devices_fails_clearly(tiny_model_path, tmp_path):
    import os

    from llem.paths import cache_dir

    study = tmp_path / "s.yaml"
    study.write_text(yaml.safe_dump({"model": "llem-tiny", "sweep": {"dtype": ["float32"]}}))
    holder = hold(cache_dir() / "locks", *visible_devices())
    try:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "llem.cli", "run", str(study), "--output", str(tmp_path / "out")],
            capture_output=True,
            text=True,
            timeout=300,
            env=os.environ,
        )
        assert proc.returncode == 1 and "in use by a study" in proc.stderr and "--no-lock" in proc.stderr
        assert "Traceback" not in proc.stderr and time.monotonic() - started < 120
    finally:
        holder.kill()
        holder.wait()


def test_an_index_and_a_uuid_naming_one_gpu_share_its_lock(monkeypatch, tmp_path):
    from tests.fakes.fixtures import install_fake_nvml
    from tests.fakes.gpus import A100, H100

    install_fake_nvml(monkeypatch, tmp_path, [H100, {**A100, "mig": ["MIG-aaaa-0001"]}])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    by_index = visible_devices()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", A100["uuid"])
    assert visible_devices() == by_index == [f"gpu-{A100['uuid']}"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-aaaa-0001")  # a MIG slice locks its whole GPU
    assert visible_devices() == by_index
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_devices() == sorted([f"gpu-{H100['uuid']}", f"gpu-{A100['uuid']}"])
