"""Pre-flight: what can be known to fail before any model loads (no torch, no model, no download).

Two kinds of problem, because a study is planned on one machine and may run on another:

- :func:`config_problems`: certain from the experiment and the files it names (a dataset file that
  is missing or holds fewer than ``dataset.n_prompts`` prompts, a model folder that does not exist).
  ``llem plan`` and ``llem run`` skip such an experiment with the reason.
- :func:`machine_problems`: true of the machine that asks (the engine's package is not installed, the
  energy sampler chosen explicitly has no source here, a hub model is not cached and the hub cannot be
  reached). The study planner lists them as notes (its jobs may run elsewhere: Slurm, a container);
  a job on this machine stops on them.

:func:`check_job` runs both in the task app before the runner starts: one ``llem:`` line, exit 2.
"""

from __future__ import annotations

from typing import Any

from llem.config.schema import ExperimentConfig
from llem.datasets import check_source
from llem.errors import ConfigError, DatasetError, EngineUnavailableError
from llem.models.resolve import local_model_problem


class PreflightError(ConfigError):
    """A setting that would fail on this machine, found before the model loads."""


def config_problems(cfg: ExperimentConfig) -> list[str]:
    """Problems of ``cfg`` that no machine could run past (the files it names); [] when none."""
    problems = []
    try:
        check_source(cfg.dataset)
    except DatasetError as err:
        problems.append(str(err))
    model = local_model_problem(cfg.model)
    if model:
        problems.append(model)
    return problems


def machine_problems(cfg: ExperimentConfig, runner_kind: str = "process", in_study: bool = False) -> list[str]:
    """Problems of ``cfg`` on this machine; [] when none. A job run in a container (``runner_kind``
    docker) brings its own engine, sampler libraries and cache, so none of these apply to it.
    ``in_study``: install hints in the words of a study file rather than of ``python -m llem``."""
    if runner_kind == "docker":
        return []
    from llem.energy.select import sampler_problem
    from llem.engines import check_available
    from llem.models.resolve import hub_model_problem
    from llem.user_config import load_user_config

    problems = []
    try:
        check_available(cfg.engine, in_study)
    except EngineUnavailableError as err:
        problems.append(str(err))
    else:
        problems += _gpu_only_problem(cfg)
    device_map = cfg.transformers.device_map if cfg.transformers else None
    if device_map and (device_map.startswith("cuda") or device_map.isdigit()) and not cuda_visible():
        problems.append(
            f"transformers.device_map={device_map}: no CUDA GPU is visible here; "
            "use transformers.device_map=cpu, or leave it unset (auto)"
        )
    sampler = sampler_problem(cfg.energy_sampler, load_user_config().measurement)
    if sampler:
        problems.append(sampler)
    if cfg.dataset.source == "aienergyscore" and not _importable("datasets"):
        problems.append("dataset.source=aienergyscore needs the 'datasets' package: pip install 'llem[aienergyscore]'")
    model = hub_model_problem(cfg.model)
    if model:
        problems.append(model)
    return problems


def machine_key(cfg: ExperimentConfig) -> tuple[Any, ...]:
    """What :func:`machine_problems` reads of ``cfg``: experiments with one key have the same
    problems (a study with thousands of experiments asks once per key)."""
    device_map = cfg.transformers.device_map if cfg.transformers else None
    return cfg.engine, cfg.energy_sampler, cfg.dataset.source == "aienergyscore", cfg.model, device_map


def check_job(cfg: ExperimentConfig, runner_kind: str = "process", in_study: bool = False) -> None:
    """Raise :class:`PreflightError` (exit 2) naming every problem :func:`config_problems` and
    :func:`machine_problems` find for a job about to run here."""
    problems = config_problems(cfg) + machine_problems(cfg, runner_kind, in_study)
    if problems:
        raise PreflightError("; ".join(problems))


def _gpu_only_problem(cfg: ExperimentConfig) -> list[str]:
    """An engine that runs on NVIDIA GPUs only (TensorRT-LLM), installed where no GPU is visible."""
    from llem.config.engines import ENGINES

    if not ENGINES[cfg.engine.value].gpu_only or cuda_visible():
        return []
    return [
        f"engine={cfg.engine.value} runs on NVIDIA GPUs only, and none is visible here (no NVIDIA driver, or "
        "CUDA_VISIBLE_DEVICES hides them all): run it on a GPU machine, or in its container there (runner.kind=docker)"
    ]


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def cuda_visible() -> bool:
    """An NVIDIA driver is loaded and ``CUDA_VISIBLE_DEVICES`` does not hide every GPU (no torch)."""
    import os

    from llem.engines import nvidia_driver_present

    return nvidia_driver_present() and os.environ.get("CUDA_VISIBLE_DEVICES", "0").strip() not in ("", "-1")
