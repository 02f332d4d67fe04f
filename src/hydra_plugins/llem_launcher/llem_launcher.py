"""llem's launchers: hydra-submitit-launcher's Slurm and local launchers, waiting for every job.

hydra-submitit-launcher's own ``launch()`` ends with ``[j.results()[0] for j in jobs]``: the first job
that the scheduler kills (time limit, ``scancel``, node failure, preemption) raises there, the jobs
after it are not waited for, and the sweep stops. On a cluster without accounting a killed job is
waited for forever. These launchers submit exactly as that one does, then wait for every job
(:mod:`llem.study.submitit_jobs`): a job that ends without returning is recorded in its
``status.json`` (Slurm's state and the ``slurmstepd`` line of its log) and comes back as an
:class:`~llem.study.submitit_jobs.UnfinishedJob`, whose ``return_value`` is None, so that any
sweeper, Hydra's included, goes on past it. The sweep report then counts it and exits non-zero.

Config names (group ``hydra/launcher``): ``llem_slurm`` and ``llem_submitit_local``, with the fields
of hydra-submitit-launcher's ``submitit_slurm`` and ``submitit_local``; llem's presets ``slurm_gpu``
and ``slurm_array`` (``llem/conf/hydra/launcher/``) build on ``llem_slurm``. hydra-submitit-launcher's
own names are refused before a sweep starts (:func:`llem.study.submitit_jobs.selects_slurm`).

Every Hydra app imports this module at start, so it imports nothing heavy at module level. No
``from __future__ import annotations``: Hydra executes plugin modules before registering them in
``sys.modules``, and dataclasses then cannot resolve string annotations.
"""

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra.errors import HydraException
from hydra_plugins.hydra_submitit_launcher import config as submitit_config
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

log = logging.getLogger("llem.study")


@dataclass
class LlemSlurmConf(submitit_config.SlurmQueueConf):
    """hydra-submitit-launcher's ``submitit_slurm`` fields; every job is waited for."""

    _target_: str = "hydra_plugins.llem_launcher.llem_launcher.LlemSlurmLauncher"


@dataclass
class LlemLocalConf(submitit_config.LocalQueueConf):
    """hydra-submitit-launcher's ``submitit_local`` fields; every job is waited for."""

    _target_: str = "hydra_plugins.llem_launcher.llem_launcher.LlemLocalLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="llem_slurm", node=LlemSlurmConf, provider="llem")
ConfigStore.instance().store(group="hydra/launcher", name="llem_submitit_local", node=LlemLocalConf, provider="llem")


class WaitsForEveryJob:
    """The ``launch()`` of llem's submitit launchers (mixed into hydra-submitit-launcher's classes)."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Submit one job per override list (one array when there are several), wait for all of them;
        per job, its ``JobReturn``, or an ``UnfinishedJob`` saying why it ended without one."""
        from llem.study import submitit_jobs  # lazy: plugin discovery imports this module

        jobs = self._submit(job_overrides, initial_job_idx)
        returns = submitit_jobs.wait_for_all(jobs)
        for num, (overrides, job, returned) in enumerate(zip(job_overrides, jobs, returns), start=initial_job_idx):
            if isinstance(returned, submitit_jobs.UnfinishedJob):
                returned.overrides = list(overrides)
                log.warning("job #%d: %s", num, returned.reason)
                try:
                    job_dir = self._job_dir(overrides, num, job.job_id)
                    submitit_jobs.record_unfinished(job_dir, returned)
                except (HydraException, OmegaConfBaseException, OSError) as err:
                    log.warning("job #%d: its status.json could not say so (%s)", num, err)
                    continue
                returned.working_dir = str(job_dir)
        return returns

    def _submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Any]:
        """Submit as hydra-submitit-launcher's ``launch()`` does: same executor, same parameters, the
        launcher itself as the pickled job (its ``__call__`` runs the Hydra job on the node)."""
        import submitit

        from llem.study.submitit_jobs import SubmissionError, last_lines

        # hydra-submitit-launcher's insides, used here only: the executor kind (_EXECUTOR), the
        # launcher's parameters (params), and how BaseSubmititLauncher.launch turns them into a
        # submitit executor. Mirrors hydra-submitit-launcher 1.2 (pyproject pins it below 1.3).
        kind = self._EXECUTOR
        params = dict(self.params)
        init = {"folder": params.pop("submitit_folder")}
        if "max_num_timeout" in params:
            init[f"{kind}_max_num_timeout"] = params.pop("max_num_timeout")
        shared = set(OmegaConf.structured(submitit_config.BaseQueueConf).keys())
        try:
            executor = submitit.AutoExecutor(cluster=kind, **init)
            executor.update_parameters(**{k if k in shared else f"{kind}_{k}": v for k, v in params.items()})
        except RuntimeError as err:  # submitit: 'Could not detect "srun", are you indeed on a slurm cluster?'
            raise SubmissionError(f"cannot submit to Slurm from this machine: {err}") from err

        sweep = self.config.hydra.sweep
        log.info("Submitit '%s' sweep output dir : %s", kind, sweep.dir)
        Path(str(sweep.dir)).mkdir(parents=True, exist_ok=True)
        if "mode" in sweep:
            os.chmod(str(sweep.dir), mode=int(str(sweep.mode), 8))
        arguments = []
        for num, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
            arguments.append((list(overrides), "hydra.sweep.dir", num, f"job_id_for_{num}", Singleton.get_state()))
        try:
            return executor.map_array(self, *zip(*arguments))
        except (OSError, submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as err:
            raise SubmissionError(f"the {kind} scheduler refused the jobs: {last_lines(str(err))}") from err

    def _job_dir(self, overrides: Sequence[str], num: int, job_id: str) -> Path:
        """The folder the job writes to (the job computes it the same way, on its node)."""
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config.hydra.job):
            config.hydra.job.id, config.hydra.job.num = job_id, num
        chosen = OmegaConf.select(config, "output_dir")  # llem's own output_dir wins, as in llem.app
        return Path(os.path.abspath(str(chosen or Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir))))


class LlemSlurmLauncher(WaitsForEveryJob, submitit_launcher.SlurmLauncher):
    """hydra-submitit-launcher's Slurm launcher, waiting for every job (``hydra/launcher=llem_slurm``)."""


class LlemLocalLauncher(WaitsForEveryJob, submitit_launcher.LocalLauncher):
    """hydra-submitit-launcher's local launcher, waiting for every job (``hydra/launcher=llem_submitit_local``)."""
