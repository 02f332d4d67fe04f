"""engine=tensorrt where it cannot run: one line naming what is missing and how to get it, before any
model loads (pre-flight, ``llem config``, and ``python -m llem`` itself)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import llem.engines
import llem.preflight
from llem.config.load import load_experiment
from llem.config.schema import Engine
from llem.engines import install_hint, is_available
from llem.preflight import machine_problems

TRT = {"engine": "tensorrt", "dtype": "float16", "model": "llem-tiny"}


def test_without_a_gpu_the_hint_says_where_it_can_run(monkeypatch):
    monkeypatch.setattr(llem.engines, "nvidia_driver_present", lambda: False)
    hint = install_hint(Engine.tensorrt, in_study=False)
    assert hint.startswith("it runs on NVIDIA GPUs only and this machine has none; on a GPU machine: ")
    assert "pip install 'llem[tensorrt]'" in hint and "runner.kind=docker" in hint
    assert "llem run STUDY --runner docker" in install_hint(Engine.tensorrt, in_study=True)


def test_with_a_gpu_the_hint_is_the_install(monkeypatch):
    monkeypatch.setattr(llem.engines, "nvidia_driver_present", lambda: True)
    assert install_hint(Engine.tensorrt, in_study=False).startswith(
        "pip install 'llem[tensorrt]' (needs an NVIDIA GPU)"
    )


def test_installed_but_no_gpu_visible_is_one_problem(monkeypatch):
    monkeypatch.setattr(llem.engines, "is_available", lambda engine: True)
    monkeypatch.setattr(llem.preflight, "cuda_visible", lambda: False)
    problems = [p for p in machine_problems(load_experiment(TRT)) if "engine=tensorrt" in p]
    assert problems == [
        "engine=tensorrt runs on NVIDIA GPUs only, and none is visible here (no NVIDIA driver, or "
        "CUDA_VISIBLE_DEVICES hides them all): run it on a GPU machine, or in its container there (runner.kind=docker)"
    ]


@pytest.mark.skipif(is_available(Engine.tensorrt), reason="TensorRT-LLM is installed here")
def test_python_m_llem_fails_before_load_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "llem", "engine=tensorrt", "model=llem-tiny", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("llem: engine=tensorrt needs the 'tensorrt_llm' package, which is not installed here: ")
    assert "llem[tensorrt]" in line and "runner.kind=docker" in line
    assert not (tmp_path / "run" / "result.json").exists()


def test_llem_config_says_an_installed_tensorrt_llm_cannot_run_without_a_gpu(monkeypatch):
    import llem.machine

    real_version = llem.machine._version
    monkeypatch.setattr(llem.machine, "_version", lambda p: "1.2.1" if p == "tensorrt-llm" else real_version(p))
    for visible in (False, True):
        monkeypatch.setattr(llem.preflight, "cuda_visible", lambda visible=visible: visible)
        (probe,) = [p for p in llem.machine.engines() if p.name == "tensorrt"]
        assert probe.available is visible
        assert probe.detail.startswith("1.2.1 (tensorrt-llm)")
        assert ("runs on NVIDIA GPUs only and none is visible here" in probe.detail) is not visible
