"""Errors a user can cause. The CLI prints their message (no traceback) and exits with ``exit_code``."""

from __future__ import annotations

from typing import Any


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


class JobFailed(LlemError):
    """A job's measurement failed in its worker; carries what the worker (or its supervisor) reported."""

    def __init__(
        self,
        error_type: str,
        message: str,
        exit_reason: str,
        *,
        traceback: str | None = None,
        exit_code: int = 1,
        worker: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type, self.exit_reason, self.traceback = error_type, exit_reason, traceback
        self.exit_code = exit_code
        self.worker = worker  # the worker's pid, exit code and wall time, when there was one
