"""The ``llem`` sweeper: launches the runs of ``study_plan.json`` through any Hydra launcher.

Every Hydra app imports this module at start, so it imports nothing heavy at module level. No
``from __future__ import annotations``: Hydra loads plugin modules without registering them in
``sys.modules``, and dataclasses then cannot resolve string annotations.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import MISSING, DictConfig


@dataclass
class LlemSweeperConf:
    _target_: str = "hydra_plugins.llem_sweeper.llem_sweeper.LlemSweeper"
    # study_plan.json written by `llem run` (runs, their overrides, execution settings)
    plan_file: str = MISSING
    # runs per launch: 1 = strict order, one at a time; null = all at once (e.g. a Slurm array)
    max_batch_size: Optional[int] = 1


ConfigStore.instance().store(group="hydra/sweeper", name="llem", node=LlemSweeperConf, provider="llem")


class LlemSweeper(Sweeper):
    """Runs the study's ordered runs through the configured launcher; failed runs are recorded and
    the study goes on. llem's submitit launchers (``hydra_plugins.llem_launcher``) wait for every job
    and record a job the scheduler kills in its ``status.json``, where the study reads it."""

    def __init__(self, plan_file: str, max_batch_size: Optional[int] = 1) -> None:
        self.plan_file = Path(plan_file)
        self.max_batch_size = max_batch_size
        self.launcher: Any = None
        self.config: Optional[DictConfig] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from llem.results.io import read_json
        from llem.study.execute import Execution, execute

        plan = read_json(self.plan_file)
        study_dir = self.plan_file.parent
        settings = Execution(**plan["execution"])
        returns: list[Any] = []

        def launch(jobs: list[list[str]], first_index: int) -> Any:
            batch = self.launcher.launch(jobs, initial_job_idx=first_index)
            returns.extend(batch)
            return batch

        execute(launch, plan, study_dir, list(arguments), settings, self.max_batch_size)
        return returns
