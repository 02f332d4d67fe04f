"""Power traces polled at a fixed rate: their energy, their time-weighted mean, and whether the
polling resolved them.

A trace is a list of wall times (seconds) and powers (watts). Polling measures energy correctly only
when the power changes slowly compared with the polling period; a load that switches faster (bursts
of compute at a few hertz) is aliased, and the integrated energy can be off by a large share of the
swing without any sign in the figure itself (+18% on a 0.3 s square wave at 10 Hz).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# A trace swinging less than this share of its mean power is taken as steady, whatever its steps.
MIN_SWING_SHARE = 0.10
# Mean step between successive samples, as a share of the swing, above which polling did not
# resolve the trace. A sine sampled n times a period gives (2/pi) sin(pi/n): 0.12 at 17 samples a
# period, 0.22 at 9, 0.30 at about 6.4; a load switching faster than the polling gives 0.5 or more.
MAX_STEP_SHARE = 0.30
# Fewer samples than this say nothing about how the power moves.
MIN_SAMPLES_TO_JUDGE = 8


def trapezoid_j(times_s: list[float], powers_w: list[float]) -> float:
    """Energy in joules of a power trace (watts at wall times in seconds), trapezoid rule."""
    return sum((t1 - t0) * (p0 + p1) / 2.0 for t0, t1, p0, p1 in zip(times_s, times_s[1:], powers_w, powers_w[1:]))


@dataclass(frozen=True)
class TraceStats:
    """Time-weighted summary of a power trace."""

    mean_w: float  # energy over the span (trapezoid rule), watts
    std_w: float  # spread of the samples, each weighted by the time it stands for, watts
    span_s: float  # first to last sample, seconds
    samples: int


def trace_stats(times_s: list[float], powers_w: list[float]) -> TraceStats:
    """The time-weighted mean and spread of a trace (a lone sample stands for itself, span 0)."""
    span_s = times_s[-1] - times_s[0] if times_s else 0.0
    if len(times_s) < 2 or span_s <= 0:
        mean = sum(powers_w) / len(powers_w)
        return TraceStats(mean, 0.0, 0.0, len(powers_w))
    mean = trapezoid_j(times_s, powers_w) / span_s
    gaps = [t1 - t0 for t0, t1 in zip(times_s, times_s[1:])]
    weights = [(left + right) / 2.0 for left, right in zip([0.0, *gaps], [*gaps, 0.0])]  # half of each side
    variance = sum(w * (p - mean) ** 2 for w, p in zip(weights, powers_w)) / span_s
    return TraceStats(mean, math.sqrt(variance), span_s, len(powers_w))


def unresolved_trace_warning(label: str, times_s: list[float], powers_w: list[float], hz: float | None) -> str | None:
    """A measurement warning when the trace of ``label`` changes faster than polling at ``hz`` resolves.

    The power of a resolved trace moves little from one sample to the next compared with its whole
    swing; an aliased one jumps across much of the swing at nearly every sample.
    """
    if len(powers_w) < MIN_SAMPLES_TO_JUDGE:
        return None
    mean = trace_stats(times_s, powers_w).mean_w
    swing = max(powers_w) - min(powers_w)
    if mean <= 0 or swing < MIN_SWING_SHARE * mean:
        return None
    steps = [abs(p1 - p0) for p0, p1 in zip(powers_w, powers_w[1:])]
    step_share = sum(steps) / len(steps) / swing
    if step_share <= MAX_STEP_SHARE:
        return None
    return (
        f"{label}: power polled{f' at {hz:g} Hz' if hz else ''} jumps by {step_share:.0%} of its {swing:.0f} W "
        f"swing between successive samples (mean {mean:.0f} W): the load changes faster than the polling "
        "resolves, so the energy can be off by a large share of the swing (aliasing); prefer a GPU energy counter"
    )
