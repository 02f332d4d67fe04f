"""The few figures of a result that a study's manifest and a sweep's return value carry."""

from __future__ import annotations

from typing import Any

from llem.results.schema import RunResult


def headline(result: RunResult) -> dict[str, Any]:
    """Output tokens, inference time (s), output tokens per second and raw energy (J, null if unmeasured)."""
    return {
        "output_tokens": result.tokens.output_tokens,
        "inference_time_s": result.inference_time_s,
        "output_tokens_per_s": result.throughput.output_tokens_per_s,
        "energy_j": result.energy.energy_j,
    }
