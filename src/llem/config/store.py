"""Registers llem's structured configs in Hydra's ConfigStore, and the resolver its YAML uses.

The YAML side (primary config and group presets) lives in the repo-root ``conf/``, packaged as
``llem.conf``; this module only provides the typed schema those files build on.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from llem.config.schema import JobConfig


def _results_dir() -> str:
    from llem.user_config import results_dir

    return str(results_dir())


def register_configs() -> None:
    """Store the job schema (``llem_schema``): the experiment, its runner, its place in a study; and
    register ``${llem_results_dir:}`` (conf/config.yaml): the user config's output.results_dir, else
    ``outputs``."""
    ConfigStore.instance().store(name="llem_schema", node=JobConfig)
    OmegaConf.register_new_resolver("llem_results_dir", _results_dir, replace=True)
