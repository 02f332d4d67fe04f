"""Atomic writes: the umask decides file modes, JSON files never hold NaN or infinity."""

from __future__ import annotations

import json
import logging
import math
import os
import stat

import numpy as np
import pandas as pd
import pytest

from llem.errors import ConfigError
from llem.results.io import read_json, write_json_atomic, write_parquet_atomic, write_text_atomic


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_mode_the_umask_gives(umask, tmp_path, mask, mode):
    umask(mask)
    write_text_atomic(tmp_path / "a.txt", "x")
    write_json_atomic(tmp_path / "b.json", {"x": 1})
    write_parquet_atomic(tmp_path / "c.parquet", pd.DataFrame({"x": [1, 2]}))
    for name in ("a.txt", "b.json", "c.parquet"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert pd.read_parquet(tmp_path / "c.parquet")["x"].tolist() == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.parquet"]  # no temp left


def strict_json(path):
    """Parse as strict JSON: NaN, Infinity and -Infinity are refused."""

    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_non_finite_numbers_are_written_as_null_with_a_warning(tmp_path, caplog):
    data = {
        "energy": {"energy_j": math.nan, "per_device_j": [1.5, math.inf], "ok": 2.0},
        "latency": (np.float64(-math.inf), np.float32(0.25), np.int64(3)),
        "flag": True,
    }
    with caplog.at_level(logging.WARNING, logger="llem.results"):
        write_json_atomic(tmp_path / "result.json", data)
    assert strict_json(tmp_path / "result.json") == {
        "energy": {"energy_j": None, "per_device_j": [1.5, None], "ok": 2.0},
        "latency": [None, 0.25, 3],
        "flag": True,
    }
    warned = " ".join(r.getMessage() for r in caplog.records)
    for key in ("result.json.energy.energy_j", "result.json.energy.per_device_j[1]", "result.json.latency[0]"):
        assert key in warned
    assert math.isnan(data["energy"]["energy_j"])  # the caller's data is left as it was


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "status.json"
    write_json_atomic(target, {"status": "running"})
    with pytest.raises(TypeError):
        write_json_atomic(target, {object(): 1})  # a key JSON cannot hold
    assert strict_json(target) == {"status": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


@pytest.mark.parametrize(("content", "message"), [(b"{", "not valid JSON"), (b"\xff\xfe", "not valid JSON")])
def test_read_json_names_a_damaged_file(tmp_path, content, message):
    path = tmp_path / "manifest.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as caught:
        read_json(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert path.read_bytes() == content


def test_read_json_of_a_folder_is_a_config_error_and_a_missing_file_stays_file_not_found(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        read_json(tmp_path)
    with pytest.raises(FileNotFoundError):  # callers that expect a missing file check for it
        read_json(tmp_path / "absent.json")
