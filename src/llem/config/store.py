"""Registers llem's structured configs in Hydra's ConfigStore.

The YAML side (primary config and group presets) lives in the repo-root ``conf/``, packaged as
``llem.conf``; this module only provides the typed schema those files build on.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from llem.config.schema import ExperimentConfig

SCHEMA_NAME = "llem_schema"


def register_configs() -> None:
    """Store the experiment schema under ``llem_schema`` (idempotent)."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=ExperimentConfig)
