"""The ``llem`` command: subcommands around the Hydra task app (``python -m llem``)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llem.errors import LlemError
from llem.study.spec import ExperimentOrder


def _models(args: argparse.Namespace) -> int:
    from llem.models import BUILTIN_MODELS, model_status, prepare

    if args.action == "prepare":
        if args.name not in BUILTIN_MODELS:
            raise LlemError(f"unknown built-in model '{args.name}'; choose one of {', '.join(BUILTIN_MODELS)}")
        path = prepare(args.name, force=args.force)
        print(f"{args.name} ready in {path}")
        return 0
    table = Table(title="built-in models")
    for column in ("alias", "ready", "description", "path"):
        table.add_column(column, overflow="fold")
    for alias, description, ready, path in model_status():
        table.add_row(
            alias, "yes" if ready else "no", description, str(path) if ready else f"llem models prepare {alias}"
        )
    Console().print(table)
    return 0


def _plan(args: argparse.Namespace) -> int:
    from llem.study.launch import RunOptions, build_plan
    from llem.study.report import print_plan

    order = ExperimentOrder(args.order) if args.order else None
    options = RunOptions(cycles=args.cycles, order=order, profile=args.profile, overrides=args.overrides)
    plan, _, _ = build_plan(Path(args.file), options)
    if args.json:
        print(json.dumps(plan.to_json(), indent=2, allow_nan=False))
    else:
        print_plan(plan, Console(), show_all=args.all)
    return 0


def _run(args: argparse.Namespace) -> int:
    from llem.study.launch import RunOptions
    from llem.study.run import run_study

    options = RunOptions(
        cycles=args.cycles,
        order=ExperimentOrder(args.order) if args.order else None,
        profile=args.profile,
        fail_fast=args.fail_fast,
        no_circuit_breaker=args.no_circuit_breaker,
        timeout_hours=args.timeout,
        no_gaps=args.no_gaps,
        output=Path(args.output) if args.output else None,
        resume=args.resume,
        resume_dir=Path(args.resume_dir) if args.resume_dir else None,
        dry_run=args.dry_run,
        no_lock=args.no_lock,
        verbose=args.verbose,
        runner=args.runner,
        overrides=args.overrides,
    )
    return run_study(Path(args.file), options, Console(quiet=args.quiet))


def _summarize(args: argparse.Namespace) -> int:
    """Write each study's and sweep's tables and rank them all; a folder whose tables cannot be written
    is one warning line (the ranking still prints) and exit code 1."""
    from llem.results.collect import load_runs, result_folder
    from llem.results.ranking import print_ranking
    from llem.results.summary import aggregate, tables, write_tables

    console = Console()
    folders = [result_folder(path) for path in args.paths]
    experiments, unwritten = None, 0
    for folder in folders:
        if folder.kind == "run":  # one run: nothing to tabulate beside it
            continue
        runs, experiments = tables(folder.path)
        try:
            write_tables(runs, experiments, folder.path)
        except LlemError as err:
            print(f"llem: warning: {folder.kind} {folder.name} not summarised: {err}", file=sys.stderr)
            unwritten += 1
            continue
        console.print(
            f"{folder.kind} {folder.name}: {len(runs)} runs, {len(experiments)} experiments summarised in "
            f"{folder.path}/summary.csv, summary_experiments.csv (and .parquet)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    report = None
    if len(folders) > 1 or experiments is None:
        experiments = aggregate(load_runs([f.path for f in folders]))
    elif not unwritten:  # one study or sweep: its report too, as at the end of a run (a partial one included)
        from llem.report import write_report_quietly

        report = write_report_quietly([folders[0].path], console)
    print_ranking(experiments, console, report=report)
    return 1 if unwritten else 0


def _results(args: argparse.Namespace) -> int:
    from llem.results import catalog
    from llem.results.collect import load_runs
    from llem.results.ranking import print_ranking
    from llem.results.summary import aggregate
    from llem.user_config import results_dir

    root, console = results_dir(), Console()
    if args.action == "show":
        entry = catalog.find(root, args.id)
        experiments = aggregate(load_runs(entry.folder.path))
        title = f"{entry.folder.kind} {entry.folder.name} ({entry.id}), started {catalog.started(entry.folder)}"
        print_ranking(experiments, console, title=title)
        return 0
    found = catalog.entries(root)
    if args.action == "export":
        done = catalog.export(found, Path(args.dir), args.format)
        print(
            f"{len(done.entries)} of {len(found)} studies, sweeps and runs under {root} exported to "
            f"{', '.join(map(str, done.files))}"
        )
        if done.left_out:
            left_out = ", ".join(e.id for e in done.left_out)
            print(f"llem: warning: left out as unreadable (`llem results` says why): {left_out}", file=sys.stderr)
        return 0
    if not found:
        print(f"no studies, sweeps or runs under {root}")
        return 0
    table = _table(f"results under {root}", "id", "kind", "name", "started", "runs", "engines", "best", "its mean")
    for _, row in catalog.overview(found).iterrows():
        table.add_row(*(escape(str(v)) for v in row))
    console.print(table)
    console.print("llem results show ID: one of them ranked", highlight=False, markup=False)
    return 0


def _report(args: argparse.Namespace) -> int:
    from llem.report import build_report

    # as given: a trailing "/" says a folder, which Path would drop
    path = build_report([Path(p) for p in args.paths], output=args.output or None, baseline=args.baseline)
    print(f"report: {path}")
    return 0


def _config(args: argparse.Namespace) -> int:
    from llem import machine
    from llem.paths import cache_dir
    from llem.user_config import effective_settings, results_dir, user_config_path

    console = Console()
    path = user_config_path()
    settings = _table("settings", "key", "value", "source")
    settings.caption = f"user config: {path}" + ("" if path.exists() else " (none: defaults apply)")
    for key, value, source in effective_settings():
        settings.add_row(key, escape("-" if value is None else str(value)), escape(source))
    settings.add_row(
        "(llem cache)", str(cache_dir()), "$LLEM_CACHE_DIR" if "LLEM_CACHE_DIR" in os.environ else "default"
    )
    settings.add_row("(results)", str(results_dir()), "output.results_dir or ./outputs")
    console.print(settings)
    samplers = machine.energy_samplers()
    chosen = next((p.name for p in samplers if p.available), None)
    for title, probes in (
        ("engines", machine.engines()),
        (f"energy samplers (auto chooses: {chosen or 'none, energy not measured'})", samplers),
        ("GPUs", machine.gpus()),
        ("cluster and containers", [machine.slurm(), machine.docker()]),
    ):
        table = _table(title, "name", "available", "detail")
        for probe in probes:
            table.add_row(probe.name, "yes" if probe.available else "no", escape(probe.detail))
        console.print(table)
    if args.verbose:
        from llem.environment import snapshot

        env = snapshot()
        table = _table("environment", "item", "value")
        for key in ("python", "platform", "cpu_model", "cpu_count_logical", "memory_total_mb", "cuda_version"):
            table.add_row(key, str(getattr(env, key)))
        table.add_row("CUDA_VISIBLE_DEVICES", str(env.cuda_visible_devices))
        for package, found in sorted(env.packages.items()):
            table.add_row(package, found)
        console.print(table)
    return 0


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(columns[0], no_wrap=True)
    for column in columns[1:]:
        table.add_column(column, overflow="fold")
    return table


class _Parser(argparse.ArgumentParser):
    """argparse with llem's error format: one ``llem:`` line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"llem: {message} (see {self.prog} --help)\n")


def _positive(text: str, kind: type[int] | type[float]) -> int | float:
    """``text`` as a finite number of ``kind`` above 0 (so at least 1 for a whole number)."""
    try:
        value = kind(text)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
    if kind is int and value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def _count(text: str) -> int:
    """A whole number of at least 1 (cycles, runs)."""
    return int(_positive(text, int))


def _hours(text: str) -> float:
    """A finite number of hours above 0 (a wall-clock limit)."""
    return float(_positive(text, float))


def _add_limit_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("--cycles", type=_count, help="repetitions of the experiment list (default 3)")
    command.add_argument(
        "--max-runs",
        type=_count,
        metavar="N",
        help="refuse studies of more than N runs (default: $LLEM_MAX_RUNS, execution.max_runs, 100000)",
    )


def _add_study_flags(command: argparse.ArgumentParser) -> None:
    """The flags ``llem plan`` and ``llem run`` share, with one meaning."""
    _add_limit_flags(command)
    command.add_argument("--order", choices=[o.value for o in ExperimentOrder], help="run order (default shuffle)")
    command.add_argument(
        "--profile",
        choices=["quick", "publication"],
        help="measurement rigour preset; the study file's and the command line's values win over it",
    )


RESULT_FOLDERS = "study folders (outputs/<study>/<time>), -m sweep folders (outputs/multirun/<time>) or run folders"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="llem",
        description="Measure LLM inference cost. Run experiments with `python -m llem [overrides] [-m]`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="list the built-in models, or prepare one")
    models.add_argument("action", nargs="?", choices=["list", "prepare"], default="list")
    models.add_argument("name", nargs="?", help="alias to prepare (llem models prepare smollm2-135m)")
    models.add_argument("--force", action="store_true", help="prepare again even if ready")
    models.set_defaults(handler=_models)

    plan = sub.add_parser("plan", help="print a study's plan without running it")
    plan.add_argument("file", help="study or experiment YAML")
    plan.add_argument("overrides", nargs="*", help="experiment overrides applied to every run (key=value)")
    plan.add_argument("--json", action="store_true", help="one JSON object on stdout")
    plan.add_argument("--all", action="store_true", help="print every run and resolved config of a large plan")
    _add_study_flags(plan)
    plan.set_defaults(handler=_plan)

    run = sub.add_parser("run", help="run a study or an experiment file")
    run.add_argument("file", help="study or experiment YAML")
    run.add_argument("overrides", nargs="*", help="key=value for every run; hydra/... options pass through")
    _add_study_flags(run)
    run.add_argument("--dry-run", action="store_true", help="print the plan and memory estimates; run nothing")
    run.add_argument("--fail-fast", action="store_true", help="stop at the first failed run")
    run.add_argument("--no-circuit-breaker", action="store_true", help="never stop for consecutive failures")
    run.add_argument("--timeout", type=_hours, metavar="HOURS", help="wall-clock limit of the whole study")
    run.add_argument("--no-gaps", action="store_true", help="no pauses between experiments and cycles")
    run.add_argument("--resume", action="store_true", help="resume the newest unfinished run of this study")
    run.add_argument("--resume-dir", metavar="PATH", help="resume the study in PATH")
    run.add_argument("--no-lock", action="store_true", help="do not lock the GPUs against other studies")
    run.add_argument("--runner", metavar="RUNNER", help="process | inline | docker | docker:<image> for every engine")
    run.add_argument("--output", metavar="DIR", help="parent folder of the study folder (default outputs/<name>)")
    run.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    run.add_argument("-v", "--verbose", action="store_true", help="print the Hydra command it launches")
    run.set_defaults(handler=_run)

    config = sub.add_parser("config", help="effective settings, engines, energy samplers, GPUs, Slurm, Docker")
    config.add_argument("-v", "--verbose", action="store_true", help="also the environment and package versions")
    config.set_defaults(handler=_config)

    summarize = sub.add_parser(
        "summarize",
        help="write the summary tables of studies and sweeps (partial ones too) and rank them; "
        "one study or sweep also gets its report",
    )
    summarize.add_argument("paths", nargs="+", metavar="PATH", help=RESULT_FOLDERS)
    summarize.set_defaults(handler=_summarize)

    report = sub.add_parser("report", help="write an HTML report of studies, sweeps or runs and print its path")
    report.add_argument("paths", nargs="+", metavar="PATH", help=RESULT_FOLDERS)
    report.add_argument(
        "--output", metavar="PATH", help="where to write the report: an .html file, or a folder to hold report.html"
    )
    report.add_argument("--baseline", metavar="EXPERIMENT", help="experiment ID every other is compared with")
    report.set_defaults(handler=_report)

    results = sub.add_parser("results", help="list the studies, sweeps and runs under the results folder")
    actions = results.add_subparsers(dest="action")
    show = actions.add_parser("show", help="one of them, its experiments ranked")
    show.add_argument("id", metavar="ID", help="as `llem results` lists it, e.g. <study>/<time>, or a folder")
    export = actions.add_parser("export", help="every run in one flat table (runs.<format>, experiments.<format>)")
    export.add_argument("dir", metavar="DIR", help="folder to write the tables into (created if missing)")
    export.add_argument("--format", choices=["parquet", "csv"], default="parquet", help="file format (default parquet)")
    results.set_defaults(handler=_results)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    # Overrides may follow flags (`llem run s.yaml --cycles 2 hydra/launcher=basic`): argparse leaves
    # those positionals unparsed, so they are collected here.
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if a.startswith("-") or not hasattr(args, "overrides")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    if getattr(args, "action", None) == "prepare" and not args.name:
        parser.error("llem models prepare needs a model alias")
    if getattr(args, "max_runs", None) is not None:
        os.environ["LLEM_MAX_RUNS"] = str(args.max_runs)  # the flag is the setting, for this command
    try:
        sys.exit(args.handler(args))
    except LlemError as err:
        from llem.app import print_error  # one `llem:` line per problem, as python -m llem prints them

        print_error(err)
        sys.exit(err.exit_code)
    except BrokenPipeError:
        # The reader went away (`llem plan --json | head -1`): stop quietly, as tools killed by SIGPIPE do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)


if __name__ == "__main__":
    main()
