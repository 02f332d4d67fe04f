"""The typed result: one writer, one reader, the schema version, and files of the earlier 1.0 schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llem.results.codec import ResultFormatError, build, read_result, result_from_data, to_data, write_result
from llem.results.headline import headline
from llem.results.schema import SCHEMA_VERSION, Energy, Flops, RunResult
from tests.fakes.result import example_result


def written(tmp_path: Path, result: RunResult) -> dict:
    write_result(tmp_path / "result.json", result)
    return json.loads((tmp_path / "result.json").read_text())


def test_written_result_reads_back_equal(tmp_path):
    result = example_result()
    data = written(tmp_path, result)
    assert data["schema_version"] == SCHEMA_VERSION
    assert read_result(tmp_path / "result.json") == result
    assert headline(read_result(tmp_path / "result.json")) == {
        "output_tokens": 32,
        "inference_time_s": 2.0,
        "output_tokens_per_s": 16.0,
        "energy_j": None,
    }


def test_keys_follow_the_field_order_and_nulls_are_written(tmp_path):
    data = written(tmp_path, example_result())
    assert list(data)[:3] == ["schema_version", "llem_version", "config_hash"] and list(data)[-1] == "warnings"
    assert data["energy"]["energy_j"] is None and "energy_j" in data["energy"]
    assert data["model"]["prepare_time_s"] is None and data["telemetry"]["throttling"] is None


def test_unknown_keys_of_a_newer_minor_version_are_kept(tmp_path):
    data = to_data(example_result())
    data["schema_version"] = "1.9"
    data["flops"]["total_upper"] = 5e9
    data["novel_block"] = {"x": 1}
    result = result_from_data(data)
    assert result.flops.other_fields == {"total_upper": 5e9} and result.other_fields == {"novel_block": {"x": 1}}
    assert to_data(result) == data  # written back as read


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": "2.0"}, "schema version 2.0; this llem reads 1.x"),
        ({"schema_version": None}, "no schema_version"),
        ({"tokens": [1, 2]}, "tokens: expected an object, found list"),
        ({"warnings": "none"}, "warnings: expected a list, found str"),
    ],
)
def test_unreadable_results_name_the_file_and_the_problem(tmp_path, change, message):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({**to_data(example_result()), **change}))
    with pytest.raises(ResultFormatError, match=message) as err:
        read_result(path)
    assert str(path) in str(err.value) and err.value.exit_code == 2


def test_a_missing_key_is_named_with_its_path(tmp_path):
    data = to_data(example_result())
    del data["latency"]["ttft"]["count"], data["tokens"]["output_tokens"]
    with pytest.raises(ResultFormatError, match=r"missing key tokens\.output_tokens"):
        result_from_data(data)


def test_a_file_that_is_not_json_is_a_format_error(tmp_path):
    path = tmp_path / "result.json"
    path.write_bytes(b"\xff{")
    with pytest.raises(ResultFormatError, match="not a readable result file"):
        read_result(path)


def test_results_of_schema_1_0_still_read(tmp_path):
    """1.0 files: no host_load or prepare_time_s, short unmeasured telemetry, energy and baseline blocks."""
    data = to_data(example_result())
    data["schema_version"] = "1.0"
    del data["host_load"], data["model"]["prepare_time_s"], data["phases_s"]["prepare"]
    data["telemetry"] = {"available": False, "reason": "NVML: library not found", "timeseries": None}
    for key in ("denominators", "extra", "devices"):
        del data["energy"][key]
    data["energy"]["baseline"] = {"measured": False, "reason": "no energy sampler"}
    data["warmup"] = {"enabled": False}
    result = result_from_data(data)
    assert result.host_load is None and result.model.prepare_time_s is None
    assert result.telemetry.samples is None and result.energy.baseline.power_w is None
    assert result.energy.denominators["tokens_per_joule"] == "output_tokens / energy_j"


def test_build_turns_a_producers_mapping_into_its_block():
    flops = build(Flops, {"total": 10, "per_output_token": 1.0, "method": "m", "confidence": "high", "bound": 12})
    assert flops.total == 10 and flops.scope is None and flops.other_fields == {"bound": 12}
    with pytest.raises(ResultFormatError, match="missing key energy.sampler"):
        build(Energy, {"method": "none", "measured": False}, "energy")
