"""``llem config``: effective settings with their sources, and what this machine offers llem."""

from __future__ import annotations

import os
import subprocess
import sys


def llem_config(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "LLEM_USER_CONFIG": str(tmp_path / "config.yaml"), "COLUMNS": "200", **env}
    return subprocess.run(
        [sys.executable, "-m", "llem.cli", "config", *args], capture_output=True, text=True, env=environ, timeout=120
    )


def test_settings_show_their_source(tmp_path):
    (tmp_path / "config.yaml").write_text("measurement:\n  carbon_intensity_gco2_kwh: 233\nrunners:\n  vllm: docker\n")
    proc = llem_config(tmp_path, LLEM_DATACENTER_PUE="1.3")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split()[1]: line for line in proc.stdout.splitlines() if line.startswith("│ ")}
    assert "233" in lines["measurement.carbon_intensity_gco2_kwh"]
    assert str(tmp_path / "config.yaml") in lines["measurement.carbon_intensity_gco2_kwh"]
    assert "$LLEM_DATACENTER_PUE" in lines["measurement.datacenter_pue"]
    assert "docker" in lines["runners.vllm"] and "default" in lines["output.results_dir"]


def test_every_capability_is_reported_with_a_reason(tmp_path):
    proc = llem_config(tmp_path, LLEM_POWERCAP_ROOT=str(tmp_path / "no-powercap"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for section in ("engines", "energy samplers (auto chooses:", "GPUs", "cluster and containers"):
        assert section in out
    assert "│ transformers │ yes" in out
    assert "pip install 'llem[vllm" in out or "│ vllm         │ yes" in out  # rich markup escaped
    assert f"no powercap tree at {tmp_path / 'no-powercap'}" in out  # rapl says where it looked
    for name in ("zeus", "nvml", "rapl", "codecarbon", "slurm", "docker"):
        assert f"│ {name}" in out


def test_verbose_adds_the_environment(tmp_path):
    proc = llem_config(tmp_path, "--verbose")
    assert proc.returncode == 0 and "environment" in proc.stdout and "torch" in proc.stdout


def test_a_broken_user_config_is_one_clear_line(tmp_path):
    (tmp_path / "config.yaml").write_text("measurement:\n  pue: 1.2\n")
    proc = llem_config(tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "measurement.pue: unknown key 'pue'" in proc.stderr
