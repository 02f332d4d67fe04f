"""Runner settings as values: the runner names and worker limits every front end checks.

Here, not in :mod:`llem.runners`, so that the user config and the study layer can check a runner
name without importing the runners (which import the measurement).
"""

from __future__ import annotations

RUNNER_KINDS = ("process", "local", "inline", "docker")
# Limits of a job's worker, seconds: above 0, or None for no limit.
TIMEOUT_FIELDS = ("experiment_timeout_seconds", "silence_timeout_seconds")


def runner_problem(value: object) -> str | None:
    """Why ``value`` is not a runner (``process``, ``local``, ``inline``, ``docker`` or ``docker:<image>``), or None."""
    if isinstance(value, str) and (value in RUNNER_KINDS or (value.startswith("docker:") and len(value) > 7)):
        return None
    return f"invalid runner {value!r}; use one of {', '.join(RUNNER_KINDS)} or docker:<image>"
