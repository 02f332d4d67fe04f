"""Errors a user can cause. The CLI prints their message (no traceback) and exits with ``exit_code``."""

from __future__ import annotations


class LlemError(Exception):
    """A problem the user can fix; the message names the key or file and the fix."""

    exit_code = 1


class ConfigError(LlemError):
    """An invalid experiment or study configuration (exit code 2, like a usage error)."""

    exit_code = 2


class ModelUnavailableError(LlemError):
    """A model cannot be loaded here (not cached, no network, missing package)."""


class DatasetError(LlemError):
    """A dataset cannot be read: missing or empty file, no usable prompt field, hub unreachable."""


class EngineUnavailableError(LlemError):
    """The selected engine, or one of its options, cannot run on this machine."""
