"""The energy block of a run whose energy is not measured: every figure null, never zero."""

from __future__ import annotations

from typing import Any

from llem.config.schema import ExperimentConfig

# The fields of the energy block; all null when nothing was measured.
ENERGY_FIELDS = (
    "scope",
    "energy_j",
    "per_device_j",
    "window_s",
    "avg_power_w",
    "adjusted_energy_j",
    "energy_per_output_token_j",
    "energy_per_token_j",
    "tokens_per_joule",
    "carbon_gco2e",
)


def unmeasured_energy(cfg: ExperimentConfig) -> dict[str, Any]:
    """``block``, ``baseline``, ``warnings`` and a one-line ``summary`` for an unmeasured run."""
    if cfg.energy_sampler is None:
        reason = "energy_sampler is null: throughput-only run"
        warnings: list[str] = []
    else:
        reason = (
            f"energy_sampler={cfg.energy_sampler.value}: no energy sampler is available in this "
            "llem release; energy figures are null"
        )
        warnings = ["energy not measured: " + reason]
    block = {"method": "none", "measured": False, **dict.fromkeys(ENERGY_FIELDS), "reason": reason}
    baseline = {"measured": False, "reason": "no energy sampler: an idle baseline would not be used"}
    return {"block": block, "baseline": baseline, "warnings": warnings, "summary": f"energy: not measured ({reason})"}
