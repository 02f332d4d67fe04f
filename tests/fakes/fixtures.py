"""Pytest helpers that install the simulated hardware: fake NVML (in-process and for subprocesses)."""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

NVML_DIR = Path(__file__).parent / "nvml"


def fake_nvml_env(scenario_path: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for a subprocess that imports the fake ``pynvml`` instead of the real one."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(NVML_DIR), *filter(None, [env.get("PYTHONPATH")])])
    env["LLEM_FAKE_NVML"] = str(scenario_path)
    return env


def install_fake_nvml(monkeypatch: Any, tmp_path: Path, devices: list[dict[str, Any]], **extra: Any) -> Any:
    """Write a scenario, make ``import pynvml`` load the fake in this process; returns the Scenario."""
    monkeypatch.syspath_prepend(str(NVML_DIR))
    for name in ("pynvml", "fake_gpu"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    fake_gpu = importlib.import_module("fake_gpu")
    path = tmp_path / "nvml_scenario.json"
    scenario = fake_gpu.write_scenario(
        path, epoch_unix_s=extra.pop("epoch_unix_s", time.time()), devices=devices, **extra
    )
    monkeypatch.setenv("LLEM_FAKE_NVML", str(path))
    module = importlib.import_module("pynvml")
    assert module.__file__ and module.__file__.startswith(str(NVML_DIR)), "the real pynvml was imported"
    monkeypatch.setitem(sys.modules, "pynvml", module)
    return scenario
