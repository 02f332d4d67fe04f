"""Terminal output of studies: the plan, the skipped list, memory estimates, the final panel."""

from __future__ import annotations

from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from llem.config.load import to_dict
from llem.study.plan import StudyPlan

# What a plan shows unless asked for everything: a large plan is summarised, not printed in full.
SHOWN_RUNS = 50
SHOWN_CONFIGS = 5
SHOWN_SKIPPED = 20


def print_plan(
    plan: StudyPlan, console: Console, memory: dict[str, str] | None = None, *, show_all: bool = False
) -> None:
    """Runs in order (position, cycle, experiment, engine, overrides), then skipped and totals.
    Without ``show_all`` only the first runs and resolved configs are printed, and the rest counted."""
    table = Table(title=f"study {escape(plan.name)} (design {plan.design_hash})")
    for column in ("pos", "cycle", "experiment", "engine", "overrides"):
        table.add_column(column)
    if memory is not None:
        table.add_column("est. memory")
    runs = plan.runs if show_all else plan.runs[:SHOWN_RUNS]
    for run in runs:
        exp = plan.experiments[run.experiment]
        row = [
            str(run.position),
            str(run.cycle),
            exp.experiment_id,
            exp.config.engine.value,
            escape(" ".join(exp.overrides[1:])),
        ]
        if memory is not None:
            row.append(memory.get(exp.experiment_id, "unknown"))
        table.add_row(*row)
    console.print(table)
    _more(console, len(plan.runs) - len(runs), "runs")
    experiments = plan.experiments if show_all else plan.experiments[:SHOWN_CONFIGS]
    for exp in experiments:
        console.rule(f"experiment {exp.experiment_id} ({escape(exp.origin)}): resolved config", style="dim")
        console.print(yaml.safe_dump(to_dict(exp.config), sort_keys=False).rstrip(), highlight=False, markup=False)
    _more(console, len(plan.experiments) - len(experiments), "resolved configs")
    print_skipped(plan, console, show_all=show_all)
    for note in plan.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    console.print(
        f"{len(plan.experiments)} experiments x {plan.n_cycles} cycles = {len(plan.runs)} runs, "
        f"order {plan.order.value}" + (f", {len(plan.skipped)} skipped" if plan.skipped else "")
    )


def _more(console: Console, hidden: int, what: str) -> None:
    if hidden > 0:
        console.print(f"... {hidden:,} more {what} not shown (--all shows every one; --json writes the whole plan)")


def print_skipped(plan: StudyPlan, console: Console, *, show_all: bool = False) -> None:
    if not plan.skipped:
        return
    shown = plan.skipped if show_all else plan.skipped[:SHOWN_SKIPPED]
    lines = [escape(f"- {s.origin}: {s.reason}") for s in shown]
    if len(shown) < len(plan.skipped):
        lines.append(f"... {len(plan.skipped) - len(shown):,} more (llem plan --all lists every one)")
    console.print(
        Panel(
            "\n".join(lines),
            title=f"Skipping {len(plan.skipped)} invalid combination{'s' if len(plan.skipped) > 1 else ''}",
            style="yellow",
        )
    )


def final_panel(manifest: dict[str, Any], console: Console) -> None:
    """ "Study complete: 11/12 ran, 1 failed ..." with the failures listed."""
    runs = manifest["runs"]
    counts = manifest.get("counts", {})
    done = counts.get("completed", 0)
    failed = [r for r in runs if r["status"] == "failed"]
    skipped = counts.get("skipped", 0)
    head = {
        "completed": "Study complete",
        "interrupted": "Study interrupted",
        "circuit_breaker": "Study stopped by the circuit breaker",
        "timed_out": "Study timed out",
    }.get(manifest["status"], f"Study {manifest['status']}")
    text = f"{head}: {done}/{len(runs)} ran, {len(failed)} failed" + (f", {skipped} skipped" if skipped else "")
    lines = [text] + [escape(f"  {r['job_dir']}: {r['error']}") for r in failed]
    style = "green" if done == len(runs) else "red"
    console.print(Panel("\n".join(lines), style=style))
