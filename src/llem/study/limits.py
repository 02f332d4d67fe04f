"""The size limit of a study: runs are counted before anything is expanded, and refused above it.

The limit is a setting: ``--max-runs N`` on ``llem plan`` / ``llem run``, else ``$LLEM_MAX_RUNS``,
else ``execution.max_runs`` in the user config, else :data:`DEFAULT_MAX_RUNS`. Study files are read
with a bound of the same size on their YAML values, so a huge file stops early too.
"""

from __future__ import annotations

import os

from llem.errors import ConfigError

DEFAULT_MAX_RUNS = 100_000  # runs (experiments x cycles) one study may plan
MIN_FILE_VALUES = 10_000  # YAML values a study file may hold even under a lower run limit
RAISE_HINT = "raise the limit with --max-runs N, $LLEM_MAX_RUNS or execution.max_runs in the user config"


def run_limit(flag: int | None = None) -> int:
    """The run limit in force: the flag, the environment, the user config, else the default."""
    if flag is not None:
        return _positive(flag, "--max-runs")
    raw = os.environ.get("LLEM_MAX_RUNS", "")
    if raw:
        try:
            return _positive(int(raw), "$LLEM_MAX_RUNS")
        except ValueError as err:
            raise ConfigError(f"$LLEM_MAX_RUNS={raw!r}: expected a whole number of runs") from err
    from llem.user_config import load_user_config

    configured = load_user_config().execution.max_runs
    return DEFAULT_MAX_RUNS if configured is None else _positive(configured, "execution.max_runs (user config)")


def _positive(value: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: must be a whole number of runs, at least 1; got {value!r}")
    return value


def check_run_count(n_runs: int, limit: int, detail: str) -> None:
    """Refuse a study of more than ``limit`` runs; ``detail`` says how the count arises."""
    if n_runs > limit:
        raise ConfigError(f"the study has {n_runs:,} runs ({detail}), above the limit of {limit:,}; {RAISE_HINT}")
