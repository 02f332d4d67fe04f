"""Terminal output of studies: the plan, the skipped list, memory estimates, the final panel."""

from __future__ import annotations

from typing import Any

import yaml
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from llem.config.load import to_dict
from llem.study.plan import StudyPlan


def print_plan(plan: StudyPlan, console: Console, memory: dict[str, str] | None = None) -> None:
    """Runs in order (position, cycle, experiment, engine, overrides), then skipped and totals."""
    table = Table(title=f"study {plan.name} (design {plan.design_hash})")
    for column in ("pos", "cycle", "experiment", "engine", "overrides"):
        table.add_column(column)
    if memory is not None:
        table.add_column("est. memory")
    for run in plan.runs:
        exp = plan.experiments[run.experiment]
        row = [
            str(run.position),
            str(run.cycle),
            exp.experiment_id,
            exp.config.engine.value,
            " ".join(exp.overrides[1:]),
        ]
        if memory is not None:
            row.append(memory.get(exp.experiment_id, "unknown"))
        table.add_row(*row)
    console.print(table)
    for exp in plan.experiments:
        console.rule(f"experiment {exp.experiment_id} ({exp.origin}): resolved config", style="dim")
        console.print(yaml.safe_dump(to_dict(exp.config), sort_keys=False).rstrip(), highlight=False, markup=False)
    print_skipped(plan, console)
    for note in plan.notes:
        console.print(f"note: {note}")
    console.print(
        f"{len(plan.experiments)} experiments x {plan.n_cycles} cycles = {len(plan.runs)} runs, "
        f"order {plan.order.value}" + (f", {len(plan.skipped)} skipped" if plan.skipped else "")
    )


def print_skipped(plan: StudyPlan, console: Console) -> None:
    if not plan.skipped:
        return
    lines = [f"- {s.origin}: {s.reason}" for s in plan.skipped]
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
    lines = [text] + [f"  {r['job_dir']}: {r['error']}" for r in failed]
    style = "green" if done == len(runs) else "red"
    console.print(Panel("\n".join(lines), style=style))
