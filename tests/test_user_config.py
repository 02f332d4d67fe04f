"""The per-user config file: optional, validated with the key named, overridden by the environment."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from llem.errors import ConfigError
from llem.user_config import effective_settings, load_user_config, user_config_path


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "llenergymeasure" / "config.yaml"
    path.parent.mkdir()
    monkeypatch.setenv("LLEM_USER_CONFIG", str(path))
    for name in ("LLEM_CARBON_INTENSITY", "LLEM_DATACENTER_PUE", "LLEM_POWERCAP_ROOT", "LLEM_RUNNER_VLLM"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_the_default_location_is_the_platform_user_config_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("LLEM_USER_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert user_config_path() == tmp_path / "llenergymeasure" / "config.yaml"


def test_no_file_means_defaults(config_file):
    cfg = load_user_config()
    assert cfg.runners == {} and cfg.measurement.carbon_intensity_gco2_kwh is None
    assert cfg.measurement.powercap_root == "/sys/class/powercap"
    assert all(source == "default" for _, _, source in effective_settings())


def test_every_section_is_read(config_file):
    config_file.write_text(
        "output:\n  results_dir: /data/results\n  model_cache_dir: /data/hf\n"
        "runners:\n  vllm: docker\n  tensorrt: docker:my/trt:1\n"
        "images:\n  vllm: my/vllm:2\n"
        "measurement:\n  datacenter_pue: 1.2\n  carbon_intensity_gco2_kwh: 233\n  datacenter_location: DEU\n"
        "execution:\n  experiment_gap_seconds: 30\n  cycle_gap_seconds: 120\n"
    )
    cfg = load_user_config()
    assert (cfg.output.results_dir, cfg.output.model_cache_dir) == ("/data/results", "/data/hf")
    assert cfg.runners == {"vllm": "docker", "tensorrt": "docker:my/trt:1"} and cfg.images == {"vllm": "my/vllm:2"}
    assert (cfg.measurement.datacenter_pue, cfg.measurement.carbon_intensity_gco2_kwh) == (1.2, 233.0)
    assert (cfg.execution.experiment_gap_seconds, cfg.execution.cycle_gap_seconds) == (30.0, 120.0)
    sources = {key: source for key, _, source in effective_settings()}
    assert sources["measurement.datacenter_pue"] == str(config_file) and sources["output.results_dir"] == str(
        config_file
    )
    assert sources["execution.cycle_gap_seconds"] == str(config_file)


def test_environment_overrides_the_file_and_says_so(config_file, monkeypatch):
    config_file.write_text("measurement:\n  carbon_intensity_gco2_kwh: 233\n")
    monkeypatch.setenv("LLEM_CARBON_INTENSITY", "50")
    monkeypatch.setenv("LLEM_DATACENTER_PUE", "1.4")
    monkeypatch.setenv("LLEM_RUNNER_VLLM", "docker")
    cfg = load_user_config()
    assert (cfg.measurement.carbon_intensity_gco2_kwh, cfg.measurement.datacenter_pue) == (50.0, 1.4)
    rows = {key: (value, source) for key, value, source in effective_settings()}
    assert rows["measurement.carbon_intensity_gco2_kwh"] == (50.0, "$LLEM_CARBON_INTENSITY")
    assert rows["runners.vllm"] == ("docker", "$LLEM_RUNNER_VLLM")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("measurement:\n  carbon_intensity: 233\n", "measurement.carbon_intensity: unknown key 'carbon_intensity'"),
        ("measurement:\n  datacenter_pue: high\n", "measurement.datacenter_pue: expected float"),
        ("runners:\n  vlm: docker\n", "runners.vlm: unknown engine (did you mean vllm?)"),
        ("runners:\n  vllm: podman\n", "runners.vllm: invalid runner 'podman'"),
        ("outputs:\n  results_dir: x\n", "outputs: unknown key 'outputs' in UserConfig (did you mean output?)"),
        ("- a list\n", "must be a mapping"),
        ("measurement: [unclosed\n", "(the user config): not valid YAML (line 2"),
        ("output:\n  results_dir: a\n  results_dir: b\n", "duplicate key 'results_dir'"),
        ("measurement:\n  datacenter_location: 2026-12-01\n", "measurement.datacenter_location"),
        ("a: &x [*x]\n", "(the user config)"),
        ("measurement:\n  datacenter_pue: .nan\n", "measurement.datacenter_pue: must be a finite number, got nan"),
        ("execution:\n  cycle_gap_seconds: .inf\n", "execution.cycle_gap_seconds: must be a finite number, got inf"),
    ],
)
def test_an_invalid_file_names_the_key_and_the_file(config_file, text, expected):
    config_file.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_user_config()
    assert str(config_file) in str(err.value) and expected in str(err.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"measurement:\n  datacenter_location: \xff\n", "not UTF-8"), (None, "is a folder")],
)
def test_an_unreadable_file_is_one_error_naming_it(config_file, content, expected):
    if content is None:
        config_file.mkdir()
    else:
        config_file.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_user_config()
    assert str(config_file) in str(err.value) and expected in str(err.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("one point two", "expected a number"), ("nan", "expected a finite number"), ("-inf", "expected a finite")],
)
def test_a_bad_environment_value_names_the_variable(config_file, monkeypatch, raw, expected):
    monkeypatch.setenv("LLEM_DATACENTER_PUE", raw)
    with pytest.raises(ConfigError, match=rf"\$LLEM_DATACENTER_PUE='{raw}': {expected}"):
        load_user_config()


def test_environment_values_take_their_key_type(config_file, monkeypatch):
    monkeypatch.setenv("LLEM_MAX_RUNS", "500")
    monkeypatch.setenv("LLEM_POWERCAP_ROOT", "/srv/powercap")
    config = load_user_config()
    assert config.execution.max_runs == 500 and isinstance(config.execution.max_runs, int)
    assert config.measurement.powercap_root == "/srv/powercap"
    monkeypatch.setenv("LLEM_MAX_RUNS", "5.5")
    with pytest.raises(ConfigError, match=r"\$LLEM_MAX_RUNS='5.5': expected a whole number"):
        load_user_config()


def test_results_dir_moves_single_runs_and_sweeps(config_file, tmp_path):
    config_file.write_text(f"output:\n  results_dir: {tmp_path / 'results'}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "llem", "--cfg", "hydra", "--resolve"], capture_output=True, text=True, cwd=tmp_path
    )
    hydra = yaml.safe_load(proc.stdout)["hydra"]
    assert hydra["run"]["dir"].startswith(f"{tmp_path / 'results'}/runs/")
    assert hydra["sweep"]["dir"].startswith(f"{tmp_path / 'results'}/multirun/")


def test_a_broken_user_config_stops_python_m_llem_with_one_line(config_file, tmp_path):
    config_file.write_text("runners:\n  vllm: podman\n")
    proc = subprocess.run([sys.executable, "-m", "llem"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "runners.vllm: invalid runner 'podman'" in proc.stderr
