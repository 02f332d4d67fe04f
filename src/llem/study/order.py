"""Run order: experiments x cycles under sequential, interleave, shuffle, reverse or latin_square."""

from __future__ import annotations

import random
from dataclasses import dataclass

from llem.study.spec import ExperimentOrder


@dataclass(frozen=True)
class Run:
    """One run of the study: an experiment in a cycle, at a position of the run order."""

    position: int  # 0-based place in the whole study's order
    cycle: int  # 0-based
    experiment: int  # index into the study's experiment list


def williams_rows(n: int) -> list[list[int]]:
    """Rows of a Williams design for ``n`` treatments: each treatment once per position per block
    of rows, and each ordered pair of neighbours equally often (first-order carry-over balanced).
    ``n`` rows when ``n`` is even, ``2n`` when odd (the mirror rows complete the balance).
    """
    if n == 1:
        return [[0]]
    first, low, high = [0], 1, n - 1
    while len(first) < n:
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    rows = [[(t + shift) % n for t in first] for shift in range(n)]
    if n % 2:
        rows += [list(reversed(row)) for row in rows]
    return rows


def cycle_orders(n_experiments: int, n_cycles: int, order: ExperimentOrder, seed: int) -> list[list[int]]:
    """The experiment order of each cycle (``sequential`` is handled by :func:`plan_runs`)."""
    base = list(range(n_experiments))
    if order is ExperimentOrder.shuffle:
        rng = random.Random(seed)
        return [rng.sample(base, len(base)) for _ in range(n_cycles)]
    if order is ExperimentOrder.reverse:
        return [base if c % 2 == 0 else base[::-1] for c in range(n_cycles)]
    if order is ExperimentOrder.latin_square:
        rows = williams_rows(n_experiments)
        return [rows[c % len(rows)] for c in range(n_cycles)]
    return [base for _ in range(n_cycles)]


def plan_runs(n_experiments: int, n_cycles: int, order: ExperimentOrder, seed: int) -> list[Run]:
    """Every run of the study in execution order (none when there are no experiments)."""
    if n_experiments == 0:
        return []
    if order is ExperimentOrder.sequential:
        pairs = [(c, e) for e in range(n_experiments) for c in range(n_cycles)]
    else:
        pairs = [(c, e) for c, row in enumerate(cycle_orders(n_experiments, n_cycles, order, seed)) for e in row]
    return [Run(position=i, cycle=c, experiment=e) for i, (c, e) in enumerate(pairs)]


def latin_square_warning(n_experiments: int, n_cycles: int) -> str | None:
    """A warning when the cycles do not cover whole blocks of the Williams design."""
    if n_experiments == 0:
        return None
    rows = len(williams_rows(n_experiments))
    if n_cycles % rows:
        return (
            f"latin_square: {n_cycles} cycles is not a multiple of the design's {rows} rows; "
            "carry-over is balanced only over whole blocks"
        )
    return None
