"""``llem run FILE``: plan a study (or one experiment file), write its folder, run it through Hydra."""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from llem.config.command_line import check_folder
from llem.config.engines import ENGINE_NAMES
from llem.config.load import deep_merge, group_option_values
from llem.config.overrides import group_options
from llem.config.runners import runner_problem
from llem.errors import ConfigError
from llem.preflight import machine_key, machine_problems
from llem.results.io import read_json, write_json_atomic
from llem.runners import choose_runner
from llem.study.encode import quote
from llem.study.execute import Execution
from llem.study.expand import Assignment, nest, route
from llem.study.locks import OWNER_FILE
from llem.study.manifest import COMPLETED, FAILED, SKIPPED_FILE, Manifest, read_manifest
from llem.study.plan import StudyPlan, plan_study
from llem.study.spec import ExperimentOrder, StudySpec, is_study, parse_study, read_yaml
from llem.user_config import load_user_config, results_dir

# What each profile implies at study level (its experiment fields come from conf/profile/).
PROFILE_CYCLES = {"quick": 1, "publication": 5}
PROFILE_ORDER = {"publication": ExperimentOrder.shuffle}
# What a study folder holds before its first run is launched.
STARTUP_FILES = {"study_plan.json", "manifest.json", SKIPPED_FILE, "study.yaml", "hydra_command.txt", OWNER_FILE}


@dataclass
class RunOptions:
    """The flags of ``llem run`` (None: the file's value, else the default)."""

    cycles: int | None = None
    order: ExperimentOrder | None = None
    profile: str | None = None
    fail_fast: bool = False
    no_circuit_breaker: bool = False
    timeout_hours: float | None = None
    no_gaps: bool = False
    output: Path | None = None
    resume: bool = False
    resume_dir: Path | None = None
    dry_run: bool = False
    no_lock: bool = False
    verbose: bool = False
    runner: str | None = None
    overrides: list[str] = field(default_factory=list)


def load_spec(path: Path) -> tuple[StudySpec, bool]:
    """The file as a study; an experiment file becomes a one-experiment study. Second: is_study."""
    data = read_yaml(path)
    if is_study(data):
        return parse_study(data, path), True
    runners = data.pop("runners", None)
    misplaced = [key for key in ("name", "study_execution") if key in data]
    if misplaced:
        raise ConfigError(
            f"{path}: {' and '.join(misplaced)} {'belongs' if len(misplaced) == 1 else 'belong'} to a study, "
            "but the file has no sweep: or experiments:, "
            "so it reads as one experiment. Add experiments: [{}] (or a sweep:), or remove them"
        )
    study = {"name": path.stem, "experiments": [data]}
    if runners is not None:
        study["runners"] = runners
    return parse_study(study, path), False


def split_overrides(overrides: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Command-line overrides: experiment fields (nested, applied to every experiment) and job
    options (``hydra/launcher=...``, ``hydra.launcher.x=...``, ``runner.kind=...``) passed through
    to every job as written."""
    hydra_options = [o for o in overrides if o.lstrip("+~").startswith(("hydra", "runner."))]
    fields = [o for o in overrides if o not in hydra_options]
    try:
        parsed = OverridesParser.create().parse_overrides(fields)
    except HydraException as err:
        raise ConfigError(f"cannot parse the overrides {fields}: {err}") from err
    assignments = []
    for override in parsed:
        if override.is_sweep_override():
            raise ConfigError(f"{override.input_line}: a sweep on the command line; put it in the study's sweep:")
        assignments.append(Assignment(route(override.key_or_group)[1], override.value(), "command line"))
    return nest(tuple(assignments)), hydra_options


def build_plan(path: Path, options: RunOptions) -> tuple[StudyPlan, StudySpec, Execution]:
    """The study's plan (with notes on what would fail on this machine), spec and execution settings.

    Precedence, as for ``python -m llem profile=... key=value``: the profile's values lie under
    everything the file sets (shared, sweep and experiment values), and the command line is on top.
    """
    spec, study = load_spec(path)
    extra, _ = split_overrides(options.overrides)
    profile = _profile_named(options.profile, extra.pop("profile", None))
    if profile:
        spec = dataclasses.replace(spec, shared=deep_merge(group_option_values("profile", profile), spec.shared))
    # Explicit values (flags, then the file's study_execution:) beat the profile's study settings.
    if study:
        cycles = options.cycles or spec.execution.n_cycles or PROFILE_CYCLES.get(profile)
        order = options.order or spec.execution.experiment_order or PROFILE_ORDER.get(profile)
    else:
        cycles, order = options.cycles or 1, options.order or ExperimentOrder.sequential
    plan = plan_study(spec, cycles=cycles, order=order, extra=extra or None)
    if not plan.experiments:
        reasons = "; ".join(s.reason for s in plan.skipped[:3])
        raise ConfigError(f"{path}: every experiment is invalid ({len(plan.skipped)} skipped): {reasons}")
    settings = execution_settings(spec, options)
    plan.notes.extend(machine_notes(plan, settings))
    return plan, spec, settings


def machine_notes(plan: StudyPlan, settings: Execution) -> list[str]:
    """One note per problem that would stop experiments before their model loads on this machine
    (engine not installed, energy sampler without a source, hub model neither cached nor reachable).
    Notes, not skips: the jobs may run on other machines (Slurm) or in containers, which decide."""
    found: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}  # engine -> the kind of runner its jobs get
    asked: dict[tuple[Any, ...], list[str]] = {}  # the problems of each distinct set of what is asked
    for exp in plan.experiments:
        cfg = exp.config
        engine = cfg.engine.value
        if engine not in kinds:
            kinds[engine] = choose_runner(engine, settings.runners.get(engine)).kind
        key = (*machine_key(cfg), kinds[engine])
        if key not in asked:
            asked[key] = machine_problems(cfg, kinds[engine], in_study=True)
        for problem in asked[key]:
            found.setdefault(problem, []).append(exp.experiment_id)
    return [
        f"{len(ids)} experiment{'s' if len(ids) > 1 else ''} ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''}) "
        f"would stop before loading on this machine: {problem}"
        for problem, ids in found.items()
    ]


def _profile_named(flag: str | None, override: Any) -> str:
    """The profile of ``--profile`` or of a ``profile=`` override ("" for none); they must agree."""
    if override is not None and (not isinstance(override, str) or override not in group_options("profile")):
        raise ConfigError(f"profile={override}: choose one of {', '.join(group_options('profile'))}")
    if flag and override and flag != override:
        raise ConfigError(f"--profile {flag} and profile={override} disagree; give one of them")
    return flag or override or ""


def execution_settings(spec: StudySpec, options: RunOptions) -> Execution:
    e, defaults = spec.execution, load_user_config().execution
    settings = Execution(
        experiment_gap_seconds=_first_set(e.experiment_gap_seconds, defaults.experiment_gap_seconds, 0.0),
        cycle_gap_seconds=_first_set(e.cycle_gap_seconds, defaults.cycle_gap_seconds, 0.0),
        max_consecutive_failures=e.max_consecutive_failures,
        circuit_breaker_cooldown_seconds=e.circuit_breaker_cooldown_seconds,
        wall_clock_timeout_hours=options.timeout_hours or e.wall_clock_timeout_hours,
        experiment_timeout_seconds=e.experiment_timeout_seconds,
        silence_timeout_seconds=e.silence_timeout_seconds,
        runners=_explicit_runners(spec, options),
    )
    if options.no_gaps:
        settings.experiment_gap_seconds = settings.cycle_gap_seconds = 0.0
    if options.fail_fast:
        settings.max_consecutive_failures = 1
    if options.no_circuit_breaker:
        settings.max_consecutive_failures = 0
    return settings


def _first_set(*values: float | None) -> float:
    return next(v for v in values if v is not None)


def _explicit_runners(spec: StudySpec, options: RunOptions) -> dict[str, str]:
    """Engine -> runner from ``--runner`` (every engine) or the file's ``runners:``; the job applies
    ``$LLEM_RUNNER_<ENGINE>`` above these and the user config below them."""
    if options.runner:
        problem = runner_problem(options.runner)
        if problem:
            raise ConfigError(f"--runner: {problem}")
        return dict.fromkeys(ENGINE_NAMES, options.runner)
    return dict(spec.runners)


def study_folder(plan: StudyPlan, options: RunOptions, source: Path) -> tuple[Path, bool]:
    """``(folder, resuming)``: the resume folder, or a new timestamped one (created here, so that two
    studies started in the same second get a folder each)."""
    if options.resume_dir:
        return options.resume_dir, True
    root = options.output or results_dir() / plan.name
    if options.resume:
        candidates = sorted((p for p in root.glob("*") if _resumable(p)), key=lambda p: p.name)
        if not candidates:
            raise ConfigError(f"--resume: no unfinished study of {source.name} under {root}")
        return candidates[-1], True
    check_folder("--output" if options.output else "output.results_dir", root)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S")
    folder, suffix = root / stamp, 1
    while True:
        try:
            folder.mkdir(parents=True)
            return folder, False
        except FileExistsError:
            suffix += 1
            folder = root / f"{stamp}-{suffix}"


def _resumable(folder: Path) -> bool:
    """A study folder with runs left to do (failed runs included), or one whose start was cut short
    before its manifest was written."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return _never_started(folder)
    try:
        data = read_manifest(manifest)
    except ConfigError:
        return False  # a damaged or foreign folder: not one to resume, and left as it is
    return data.get("status") != "completed" or any(r["status"] != COMPLETED for r in data["runs"])


def _never_started(folder: Path) -> bool:
    """A folder without a manifest holding nothing but start-up files: a study killed while it
    started, which a resume may adopt (no run was launched, nothing can be lost)."""
    if not folder.is_dir() or (folder / "manifest.json").exists():
        return False
    try:
        return all(p.name in STARTUP_FILES or p.name.endswith(".tmp") for p in folder.iterdir())
    except OSError:  # a folder that cannot be listed is not one to adopt
        return False


def check_drift(folder: Path, plan: StudyPlan) -> None:
    """A ConfigError unless ``folder`` holds a study of ``plan``'s design (or one that never started)."""
    manifest, plan_file = folder / "manifest.json", folder / "study_plan.json"
    if not manifest.exists() and not _never_started(folder):
        raise ConfigError(f"--resume-dir {folder}: no manifest.json there, nothing to resume")
    if manifest.exists():
        before = read_manifest(manifest)["study_design_hash"]
        read_plan_file(plan_file)  # a resume extends its runs: it must be whole
    elif plan_file.exists():
        before = read_plan_file(plan_file)["study_design_hash"]
    else:
        return  # killed before its plan was written: nothing to compare
    if before != plan.design_hash:
        raise ConfigError(
            f"config drift: {folder} was planned with design hash {before}, the study now plans to "
            f"{plan.design_hash}. Resume with the original study file, or start a new study."
        )


def read_plan_file(path: Path) -> dict[str, Any]:
    """A study folder's ``study_plan.json``; a :class:`ConfigError` naming it when it is missing,
    not JSON, or lacks the design hash and runs (experiment id and cycle each) llem writes."""
    if not path.is_file():
        raise ConfigError(f"{path}: missing; the folder is not a llem study folder or is damaged")
    data = read_json(path)
    runs = data.get("runs") if isinstance(data, dict) else None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("study_design_hash"), str)
        and isinstance(runs, list)
        and all(isinstance(r, dict) and isinstance(r.get("experiment_id"), str) and "cycle" in r for r in runs)
    ):
        raise ConfigError(
            f"{path}: not a study plan (no design hash or runs); the folder is not a llem study folder or is damaged"
        )
    return data


def resume_summary(folder: Path) -> str:
    """What a resume of ``folder`` will do, in one line."""
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return f"resuming {folder}: it was stopped while starting; running every run"
    runs = read_manifest(manifest)["runs"]
    done = sum(r["status"] == COMPLETED for r in runs)
    failed = sum(r["status"] == FAILED for r in runs)
    other = len(runs) - done - failed
    return (
        f"resuming {folder}: {done}/{len(runs)} runs completed; running again {failed} failed "
        f"run{'s' if failed != 1 else ''} and {other} not finished"
    )


def write_study_files(folder: Path, plan: StudyPlan, source: Path, settings: Execution) -> Path:
    """The study's plan, then its manifest (before any run, so that a study stopped from here on can
    be resumed), its skipped list and a copy of its file; each written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {**plan.to_json(), "execution": asdict(settings)}
    plan_file = folder / "study_plan.json"
    if (folder / "manifest.json").exists():  # resuming: keep the run list the manifest refers to
        document["runs"] = _merge_runs(read_plan_file(plan_file)["runs"], document["runs"])
    write_json_atomic(plan_file, document)
    Manifest.open(folder, document, status="starting")
    write_json_atomic(folder / SKIPPED_FILE, document["skipped"])
    _keep_study_file(source, folder)
    return plan_file


def _keep_study_file(source: Path, folder: Path) -> None:
    """Copy the study file into the folder as ``study.yaml``; on a resume from a changed file (same
    design, other cycles or comments) the first copy stays and the new one is kept beside it."""
    dest = folder / "study.yaml"
    if dest.exists():
        if dest.read_bytes() == source.read_bytes():
            return
        dest = folder / f"study.resumed-{time.strftime('%Y-%m-%dT%H-%M-%S')}.yaml"
    _copy_atomic(source, dest)


def _copy_atomic(source: Path, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _merge_runs(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """On resume with more cycles: the original runs keep their positions, new ones follow."""
    known = {(r["experiment_id"], r["cycle"]) for r in old}
    added = [r for r in new if (r["experiment_id"], r["cycle"]) not in known]
    return old + [{**r, "position": len(old) + i} for i, r in enumerate(added)]


def hydra_argv(plan_file: Path, folder: Path, hydra_options: list[str]) -> list[str]:
    return [
        "--config-name",
        "study",
        "--multirun",
        "hydra/sweeper=llem",
        f"hydra.sweeper.plan_file={quote(str(plan_file.resolve()))}",
        f"hydra.sweep.dir={quote(str(folder.resolve()))}",
        *hydra_options,
    ]


def run_hydra(argv: list[str]) -> None:
    """Run the task app in this process with ``argv``, as ``python -m llem`` would."""
    from llem.app import task

    saved = sys.argv
    sys.argv = ["llem", *argv]
    try:
        task()
    finally:
        sys.argv = saved


def command_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in [sys.executable, "-m", "llem", *argv])
