"""Pre-flight: what fails before any model loads, for a job (exit 2) and for a study's plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llem.config.schema import DatasetConfig, EnergySampler, Engine, ExperimentConfig
from llem.engines import is_available
from llem.preflight import PreflightError, check_job, config_problems, machine_problems


def write_jsonl(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"prompt": f"prompt {i}"}) + "\n" for i in range(n)))
    return path


def experiment(**fields) -> ExperimentConfig:
    return ExperimentConfig(**{"model": "llem-tiny", "energy_sampler": None, **fields})


def test_a_valid_experiment_has_no_problem(tmp_path):
    cfg = experiment(dataset=DatasetConfig(source=str(write_jsonl(tmp_path / "p.jsonl", 3)), n_prompts=3))
    assert config_problems(cfg) == [] and machine_problems(cfg) == []
    check_job(cfg)


@pytest.mark.parametrize(
    ("dataset", "expected"),
    [
        ({"source": "{tmp}/missing.jsonl"}, "dataset file {tmp}/missing.jsonl does not exist"),
        ({"source": "{tmp}", "n_prompts": 1}, "is neither a built-in dataset"),
        ({"source": "{tmp}/three.jsonl", "n_prompts": 4}, "dataset.n_prompts=4 but dataset.source="),
        ({"source": "builtin", "n_prompts": 100000}, "dataset.source=builtin has only"),
        ({"source": "{tmp}/bad.jsonl", "n_prompts": 1}, "line 1 is not valid JSON"),
    ],
)
def test_dataset_problems_are_found_without_a_model(tmp_path, dataset, expected):
    write_jsonl(tmp_path / "three.jsonl", 3)
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    fields = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in dataset.items()}
    (problem,) = config_problems(experiment(dataset=DatasetConfig(**fields)))
    assert expected.format(tmp=tmp_path) in problem
    with pytest.raises(PreflightError) as err:
        check_job(experiment(dataset=DatasetConfig(**fields)))
    assert err.value.exit_code == 2


def test_a_grown_file_is_counted_again(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", 2)
    cfg = experiment(dataset=DatasetConfig(source=str(path), n_prompts=3))
    assert config_problems(cfg)
    write_jsonl(path, 3)
    assert config_problems(cfg) == []


def test_a_missing_model_folder_is_a_config_problem(tmp_path):
    (problem,) = config_problems(experiment(model=str(tmp_path / "no-model")))
    assert "model folder" in problem and "does not exist" in problem
    (problem,) = config_problems(experiment(model=str(tmp_path)))
    assert (
        problem == f"model folder '{tmp_path}' has no config.json; give the folder that holds the model's config.json"
    )


def test_machine_problems_name_the_sampler_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("LLEM_POWERCAP_ROOT", str(tmp_path / "no-powercap"))
    (problem,) = machine_problems(experiment(energy_sampler=EnergySampler.rapl))
    assert problem.startswith("energy_sampler=rapl: RAPL: no powercap tree at") and "energy_sampler=null" in problem
    assert machine_problems(experiment(energy_sampler=EnergySampler.auto)) == [], "auto always finds its way"
    assert machine_problems(experiment(energy_sampler=EnergySampler.rapl), runner_kind="docker") == []


@pytest.mark.skipif(is_available(Engine.tensorrt), reason="TensorRT-LLM is installed here")
def test_an_engine_that_is_not_installed_is_a_machine_problem():
    (problem,) = machine_problems(experiment(engine=Engine.tensorrt))
    assert "engine=tensorrt needs the 'tensorrt_llm' package" in problem
    assert "llem run STUDY --runner docker" in machine_problems(experiment(engine=Engine.tensorrt), in_study=True)[0]


def python_m_llem(tmp_path: Path, *overrides: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llem", "model=llem-tiny", f"output_dir={tmp_path / 'job'}", *overrides],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


def assert_no_worker_started(job: Path) -> None:
    """Stopped before the runner: no job folder at all, or a status without a worker."""
    if (job / "status.json").exists():
        status = json.loads((job / "status.json").read_text())
        assert status["exit_reason"] == "invalid configuration" and "worker" not in status
    assert not (job / "result.json").exists()


@pytest.mark.parametrize(
    ("overrides", "env", "expected"),
    [
        (["dataset.source=/no/such/prompts.jsonl"], {}, "llem: dataset file /no/such/prompts.jsonl does not exist"),
        (["dataset.n_prompts=100000"], {}, "dataset.source=builtin has only"),
        (["energy_sampler=rapl"], {"LLEM_POWERCAP_ROOT": "/no/such/powercap"}, "RAPL: no powercap tree"),
    ],
)
def test_python_m_llem_stops_before_the_worker_starts(tiny_model_path, tmp_path, overrides, env, expected):
    proc = python_m_llem(tmp_path, *overrides, **env)
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr
    assert_no_worker_started(tmp_path / "job")


def test_a_study_job_stops_before_its_worker_on_a_machine_problem(tiny_model_path, tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(
        yaml.safe_dump({"name": "pre", "model": "llem-tiny", "energy_sampler": "rapl", "experiments": [{}]})
    )
    env = {**os.environ, "LLEM_POWERCAP_ROOT": str(tmp_path / "no-powercap")}
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "llem.cli", "run", str(study), "--cycles", "1", "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "would stop before loading on this machine: energy_sampler=rapl" in proc.stdout, "said before it ran"
    (manifest,) = out.glob("*/manifest.json")
    (run,) = json.loads(manifest.read_text())["runs"]
    assert run["status"] == "failed" and run["error"].startswith("PreflightError: energy_sampler=rapl")
    assert_no_worker_started(manifest.parent / run["job_dir"])


def test_plan_skips_file_problems_and_notes_machine_problems(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "pre",
                "model": "llem-tiny",
                "experiments": [
                    {"dataset": {"source": str(tmp_path / "missing.jsonl")}},
                    {"dataset": {"n_prompts": 100000}},
                    {"energy_sampler": "rapl"},
                    {"energy_sampler": "rapl", "dtype": "float32"},
                ],
            }
        )
    )
    env = {**os.environ, "LLEM_POWERCAP_ROOT": str(tmp_path / "no-powercap")}
    run = [sys.executable, "-m", "llem.cli", "plan", str(study)]
    plan = json.loads(subprocess.run([*run, "--json"], capture_output=True, text=True, env=env, check=True).stdout)
    assert plan["n_experiments"] == 2
    reasons = [s["reason"] for s in plan["skipped"]]
    assert "missing.jsonl does not exist" in reasons[0] and "has only" in reasons[1]
    text = " ".join(subprocess.run(run, capture_output=True, text=True, env=env, check=True).stdout.split())
    assert "note: 2 experiments" in text and "would stop before loading on this machine: energy_sampler=rapl" in text
