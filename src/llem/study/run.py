"""``llem run``: from a study file to a finished (or resumable) study folder."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from rich.console import Console

from llem.models.config_file import local_model_config
from llem.results.io import read_json, write_text_atomic
from llem.results.summary import summarize_quietly
from llem.study.launch import (
    RunOptions,
    build_plan,
    check_drift,
    command_line,
    hydra_argv,
    resume_summary,
    run_hydra,
    split_overrides,
    study_folder,
    write_study_files,
)
from llem.study.locks import device_locks, study_owner, visible_devices
from llem.study.plan import StudyPlan
from llem.study.report import final_panel, print_plan, print_skipped
from llem.study.submitit_jobs import selects_slurm
from llem.study.vram import estimate_bytes, local_gpu_bytes


def memory_column(plan: StudyPlan) -> dict[str, str]:
    """Estimated memory per experiment, flagged when it exceeds the local GPU."""
    gpu = local_gpu_bytes()
    out = {}
    for exp in plan.experiments:
        cfg = local_model_config(exp.config.model)
        if cfg is None:
            out[exp.experiment_id] = "unknown"
            continue
        need = estimate_bytes(exp.config, cfg)
        flag = " (likely OOM)" if gpu is not None and need > gpu else ""
        out[exp.experiment_id] = f"{need / 2**30:.2f} GiB{flag}"
    return out


def run_study(path: Path, options: RunOptions, console: Console) -> int:
    """Plan, write and run the study; the exit code: 0 all completed, 1 otherwise, 130 on Ctrl-C."""
    plan, _, settings = build_plan(path, options)
    if options.dry_run:
        print_plan(plan, console, memory=memory_column(plan))
        return 0
    _, hydra_options = split_overrides(options.overrides)
    slurm = selects_slurm(hydra_options)  # jobs run on other hosts; sbatch is here
    folder, resuming = study_folder(plan, options, path)
    if resuming:
        check_drift(folder, plan)  # first: a folder that holds no study is left untouched
    with study_owner(folder):  # one driver per study folder, --no-lock or not
        if resuming:
            console.print(resume_summary(folder), highlight=False, markup=False, soft_wrap=True)
        print_skipped(plan, console)
        for note in plan.notes:
            console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
        plan_file = write_study_files(folder, plan, path, settings)
        argv = hydra_argv(plan_file, folder, hydra_options)
        command = command_line(argv)
        write_text_atomic(folder / "hydra_command.txt", command + "\n")
        if options.verbose:
            console.print(f"launching: {command}", markup=False, highlight=False)
        console.print(f"study {plan.name}: {len(plan.runs)} runs in {folder}", markup=False, highlight=False)
        return _run_in(folder, argv, console, locked=not (options.no_lock or slurm))


def _run_in(folder: Path, argv: list[str], console: Console, locked: bool) -> int:
    """Run the study written in ``folder`` (under device locks if ``locked``) and report it."""
    locks = device_locks(visible_devices()) if locked else nullcontext()
    try:
        with locks:
            run_hydra(argv)
    except KeyboardInterrupt:
        summarize_quietly(folder, console, rank=False)
        final_panel(read_json(folder / "manifest.json"), console)
        return 130
    summarize_quietly(folder, console)  # a failure here is a warning line: the panel and exit code follow
    manifest = read_json(folder / "manifest.json")
    final_panel(manifest, console)
    return (
        0
        if manifest["status"] == "completed" and manifest["counts"].get("completed", 0) == len(manifest["runs"])
        else 1
    )
