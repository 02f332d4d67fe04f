"""Registers llem's structured configs in Hydra's ConfigStore.

The YAML side (primary config and group presets) lives in the repo-root ``conf/``, packaged as
``llem.conf``; this module only provides the typed schema those files build on.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from llem.config.schema import JobConfig


def register_configs() -> None:
    """Store the job schema (``llem_schema``): the experiment, its runner, its place in a study."""
    ConfigStore.instance().store(name="llem_schema", node=JobConfig)
