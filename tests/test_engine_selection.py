"""Choosing and preparing an engine: the GPUs it uses, and the fix offered when it is not installed."""

from __future__ import annotations

import pytest

from llem.config.load import load_experiment
from llem.config.schema import Engine
from llem.energy.devices import keep_first_gpus, restore_visible_gpus
from llem.engines import check_available, gpu_count, install_hint
from llem.errors import EngineUnavailableError


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, None),  # transformers spreads over every visible GPU
        ({"engine": "vllm"}, 1),
        ({"engine": "vllm", "vllm": {"engine": {"tensor_parallel_size": 2, "pipeline_parallel_size": 2}}}, 4),
        ({"engine": "tensorrt", "dtype": "float16", "tensorrt": {"tensor_parallel_size": 2}}, 2),
    ],
)
def test_gpu_count_is_tensor_times_pipeline_parallel(data, expected):
    assert gpu_count(load_experiment(data)) == expected


@pytest.mark.parametrize(
    ("visible", "count", "narrowed"),
    [(None, 2, "0,1"), ("3,1,2", 2, "3,1"), ("GPU-aa,GPU-bb", 1, "GPU-aa"), ("0", 4, "0")],
)
def test_visible_gpus_are_narrowed_to_the_first_ones_and_restored(visible, count, narrowed):
    env = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    previous = keep_first_gpus(count, env)
    assert env["CUDA_VISIBLE_DEVICES"] == narrowed
    restore_visible_gpus(previous, env)
    assert env == ({} if visible is None else {"CUDA_VISIBLE_DEVICES": visible})


def test_the_hint_speaks_the_command_line_in_use():
    direct, study = install_hint(Engine.vllm, in_study=False), install_hint(Engine.vllm, in_study=True)
    assert "runner.kind=docker" in direct and "--runner docker" not in direct
    assert "--runner docker" in study and "runners: {vllm: docker}" in study
    assert "llem[vllm" in direct


def test_a_missing_engine_package_is_named_with_its_fix(monkeypatch):
    monkeypatch.setattr("llem.engines.is_available", lambda engine: False)
    with pytest.raises(
        EngineUnavailableError, match=r"engine=tensorrt needs the 'tensorrt_llm' package.*llem\[tensorrt\]"
    ):
        check_available(Engine.tensorrt)


def test_the_engine_table_names_every_engine_of_the_schema():
    from llem.config.engines import ENGINE_ALIASES, ENGINES

    assert set(ENGINES) == {e.value for e in Engine} == {"transformers", "vllm", "tensorrt"}
    assert ENGINE_ALIASES == {"pytorch": "transformers"}
    assert [f.name for f in ENGINES.values() if f.measured] == ["transformers", "vllm", "tensorrt"]
