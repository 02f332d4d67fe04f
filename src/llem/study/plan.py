"""A study's plan: validated experiments, the skipped ones with reasons, and the ordered runs.

Validation uses the same checks as a Hydra job (schema, then cross-field rules) on plain dicts,
so a 10,000-experiment study plans in seconds instead of composing every job.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from llem.config.load import (
    config_dict_hash,
    deep_merge,
    fill_unset_sections,
    issues_of,
    load_experiment,
    to_dict,
    with_unset_sections,
)
from llem.config.schema import ExperimentConfig
from llem.errors import ConfigError
from llem.preflight import config_problems
from llem.study.encode import FREE_FORM_FIELDS, encode_overrides, leaves
from llem.study.expand import count_experiments, expand_study, route
from llem.study.limits import check_run_count, run_limit
from llem.study.order import Run, latin_square_warning, plan_runs
from llem.study.spec import ExperimentOrder, StudySpec

DEFAULT_CYCLES = 3
DEFAULT_ORDER = ExperimentOrder.shuffle


@dataclass
class PlannedExperiment:
    """A valid experiment of the study."""

    experiment_id: str  # first 8 hex chars of the config hash: stable across reruns
    config: ExperimentConfig
    config_hash: str
    overrides: list[str]  # Hydra overrides that compose it from the study's primary config
    origin: str


@dataclass
class SkippedExperiment:
    overrides: list[str]
    reason: str
    origin: str


@dataclass
class StudyPlan:
    name: str
    design_hash: str  # covers what is measured (the experiments), not cycles, order or gaps
    experiments: list[PlannedExperiment]
    runs: list[Run]
    skipped: list[SkippedExperiment]
    n_cycles: int
    order: ExperimentOrder
    shuffle_seed: int
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The plan as ``llem plan --json`` prints it."""
        configs = [to_dict(e.config) for e in self.experiments]
        return {
            "study_name": self.name,
            "study_design_hash": self.design_hash,
            "n_experiments": len(self.experiments),
            "n_runs": len(self.runs),
            "runs": [
                {
                    "position": run.position,
                    "cycle": run.cycle,
                    "experiment_id": self.experiments[run.experiment].experiment_id,
                    "engine": self.experiments[run.experiment].config.engine.value,
                    "overrides": self.experiments[run.experiment].overrides,
                    "config": configs[run.experiment],
                }
                for run in self.runs
            ],
            "skipped": [{"overrides": s.overrides, "reason": s.reason} for s in self.skipped],
            "notes": self.notes,
        }


@functools.cache
def engine_defaults(engine: str) -> dict[str, Any]:
    """The config an experiment with only ``engine`` set resolves to, as Hydra holds it (read only)."""
    return with_unset_sections(load_experiment({"engine": engine}))


def experiment_overrides(config: ExperimentConfig, as_dict: dict[str, Any] | None = None) -> list[str]:
    """Overrides composing ``config`` from the study primary config: the engine choice, then every
    leaf that differs from that engine's defaults (all decoder fields when a preset is set, so that
    the job does not re-apply the preset over them). ``as_dict``: ``to_dict(config)``, when known."""
    engine = config.engine.value
    resolved = fill_unset_sections(ExperimentConfig, to_dict(config) if as_dict is None else as_dict)
    changed: list[tuple[str, Any]] = []
    _differences(resolved, engine_defaults(engine), "", config.decoder.preset is not None, changed)
    out = [f"engine={engine}"]
    for path, value in changed:
        out += encode_overrides(path, value)
    return out


_ABSENT = object()


def _differences(
    resolved: dict[str, Any], defaults: Any, prefix: str, keep_decoder: bool, out: list[tuple[str, Any]]
) -> None:
    """Append ``(dotted path, value)`` for each leaf of ``resolved`` that differs from ``defaults``.
    Whole sections equal to their default are skipped in one comparison; free-form mappings are leaves.
    ``keep_decoder``: every decoder leaf counts as different."""
    for key, value in resolved.items():
        path = prefix + key
        default = defaults.get(key, _ABSENT) if type(defaults) is dict else _ABSENT
        keep = keep_decoder and (path == "decoder" or path.startswith("decoder."))
        if not keep and (value is default or value == default):
            continue
        if type(value) is dict and value and path not in FREE_FORM_FIELDS:
            _differences(value, default, path + ".", keep_decoder, out)
        else:
            out.append((path, value))


def _as_written(data: dict[str, Any]) -> list[str]:
    """``path=value`` lines describing an invalid experiment, as written (for the skipped list).
    JSON, not the override encoder: an invalid experiment may hold what no override can express."""
    return [f"{route(p)[1]}={json.dumps(v, ensure_ascii=False, default=str)}" for p, v in leaves(data)]


def design_hash(hashes: list[str]) -> str:
    """16 hex chars of SHA-256 over the experiments' config hashes, in study order."""
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:16]


def plan_study(
    spec: StudySpec,
    *,
    cycles: int | None = None,
    order: ExperimentOrder | None = None,
    extra: dict[str, Any] | None = None,
    max_runs: int | None = None,
) -> StudyPlan:
    """Expand, validate, de-duplicate and order the study. ``extra`` (nested) applies to every
    experiment, like extra command-line overrides do. A study of more than ``max_runs`` runs
    (None: the setting, see :func:`~llem.study.limits.run_limit`) is refused before it is expanded."""
    if cycles is not None and (isinstance(cycles, bool) or cycles < 1):
        raise ConfigError(f"--cycles: must be at least 1, got {cycles}")
    n_cycles = cycles or spec.execution.n_cycles or DEFAULT_CYCLES
    n_experiments = count_experiments(spec)
    limit = run_limit() if max_runs is None else max_runs
    check_run_count(n_experiments * n_cycles, limit, f"{n_experiments:,} experiments x {n_cycles:,} cycles")
    experiments: list[PlannedExperiment] = []
    skipped: list[SkippedExperiment] = []
    notes: list[str] = []
    seen: dict[str, str] = {}
    for expanded in expand_study(spec):
        data = deep_merge(expanded.data, extra) if extra else expanded.data
        config, issues = issues_of(data)
        if config is not None and not issues:
            issues = config_problems(config)  # the files it names: missing, or too few prompts
        if issues or config is None:
            reason = "; ".join(str(i) for i in issues)
            skipped.append(SkippedExperiment(_as_written(data), reason, expanded.origin))
            continue
        as_dict = to_dict(config)
        digest = config_dict_hash(as_dict)
        if digest in seen:
            notes.append(f"{expanded.origin} is identical to {seen[digest]}: it runs once")
            continue
        try:
            overrides = experiment_overrides(config, as_dict)
        except ConfigError as err:  # a free-form key Hydra's grammar cannot write
            skipped.append(SkippedExperiment(_as_written(data), str(err), expanded.origin))
            continue
        seen[digest] = expanded.origin
        experiments.append(PlannedExperiment(digest[:8], config, digest, overrides, expanded.origin))
    dhash = design_hash([e.config_hash for e in experiments])
    run_order = order or spec.execution.experiment_order or DEFAULT_ORDER
    seed = spec.execution.shuffle_seed if spec.execution.shuffle_seed is not None else int(dhash[:8], 16)
    runs = plan_runs(len(experiments), n_cycles, run_order, seed)
    if run_order is ExperimentOrder.latin_square and experiments:
        warning = latin_square_warning(len(experiments), n_cycles)
        if warning:
            notes.append(warning)
    return StudyPlan(spec.name, dhash, experiments, runs, skipped, n_cycles, run_order, seed, notes)
