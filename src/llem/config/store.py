"""Registers llem's structured configs in Hydra's ConfigStore.

The YAML side (primary config and group presets) lives in the repo-root ``conf/``, packaged as
``llem.conf``; this module only provides the typed schema those files build on.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from llem.config.schema import ExperimentConfig, StudyJobConfig


def register_configs() -> None:
    """Store the experiment schema (``llem_schema``) and the study job schema (``llem_study_schema``)."""
    store = ConfigStore.instance()
    store.store(name="llem_schema", node=ExperimentConfig)
    store.store(name="llem_study_schema", node=StudyJobConfig)
