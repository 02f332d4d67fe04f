"""The result's ``energy`` block (DESIGN §4): raw and adjusted energy, per-token figures, carbon, warnings.

Nothing here invents a number: an absent source, a dropped reading or a missing denominator gives
null with a reason, never zero.
"""

from __future__ import annotations

from llem.energy.base import EnergyReading
from llem.energy.select import Selection
from llem.results.codec import build
from llem.results.schema import Baseline, Carbon, Energy, EnergyDevice, EnergyWindow, SamplerRecord, Tokens
from llem.user_config import MeasurementSettings

J_PER_KWH = 3.6e6
# Windows shorter than this are coarse for counters (update periods of ~10-100 ms) and power polling.
MIN_WINDOW_S = 10.0


def unmeasured_block(selection: Selection, reason: str, baseline: Baseline | None) -> Energy:
    """The block of a run without an energy figure: method none, every figure null, the reason.

    With ``energy_sampler: null`` that is the request; otherwise it is a measurement warning.
    """
    said = f"energy {reason}" if reason.startswith("not measured") else f"energy not measured: {reason}"
    warnings = [] if selection.requested is None else [said]
    return Energy(
        method="none",
        measured=False,
        sampler=build(SamplerRecord, selection.record()),
        reason=reason,
        baseline=baseline,
        warnings=warnings,
    )


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def carbon(energy_j: float | None, reading: EnergyReading, settings: MeasurementSettings) -> Carbon | None:
    """gCO2e of the raw energy × PUE at the configured grid intensity (or codecarbon's own figure)."""
    if energy_j is None:
        return None
    pue = settings.datacenter_pue or 1.0
    intensity = settings.carbon_intensity_gco2_kwh
    if intensity is not None:
        return Carbon(
            gco2e=energy_j / J_PER_KWH * pue * intensity,
            intensity_gco2_kwh=intensity,
            pue=pue,
            pue_configured=settings.datacenter_pue is not None,
            location=settings.datacenter_location,
            source="measurement.carbon_intensity_gco2_kwh",
            energy_basis="energy_j (raw) x pue",
        )
    own = reading.extra.get("codecarbon_emissions_gco2e")
    if own is not None and not reading.extra.get("codecarbon_country_assumed"):
        return Carbon(
            gco2e=own,
            intensity_gco2_kwh=None,
            pue=None,
            pue_configured=False,
            location=reading.extra.get("codecarbon_country"),
            source="codecarbon (its grid intensity for the country)",
            energy_basis="codecarbon's estimated energy",
        )
    return None


def energy_block(
    selection: Selection,
    reading: EnergyReading,
    baseline: Baseline | None,
    tokens: Tokens,
    settings: MeasurementSettings,
    notes: list[str],
) -> Energy:
    """The full block for a window that a sampler read; the reading's own warnings come first after ``notes``."""
    energy_j = reading.energy_j
    window_s = reading.window_s
    warnings = list(notes) + list(reading.warnings)
    if baseline is not None:
        warnings.extend(f"baseline: {w}" for w in baseline.warnings)
    if not reading.measured:
        warnings.append(f"estimate only: {reading.method} is not a measurement")
    if energy_j is None:
        warnings.append("energy_j is null: a device's reading was dropped (see the warnings above)")
    if window_s < MIN_WINDOW_S:
        warnings.append(
            f"energy window {window_s:.2f} s is under {MIN_WINDOW_S:g} s: energy is coarse; measure more prompts"
        )
    adjusted = None
    if baseline is not None and baseline.measured and baseline.power_w is not None and energy_j is not None:
        idle_j = baseline.power_w * window_s
        adjusted = max(0.0, energy_j - idle_j)
        if idle_j > energy_j:
            warnings.append(
                f"baseline above raw: idle {baseline.power_w:.1f} W x {window_s:.2f} s = {idle_j:.1f} J exceeds "
                f"the measured {energy_j:.1f} J; adjusted energy is clamped to 0"
            )
    output_tokens, total_tokens = tokens.output_tokens, tokens.total_tokens
    footprint = carbon(energy_j, reading, settings)
    return Energy(
        method=reading.method,
        measured=reading.measured,
        sampler=build(SamplerRecord, selection.record()),
        scope=sorted({d.scope for d in reading.devices}),
        energy_j=energy_j,
        per_device_j={d.label: d.energy_j for d in reading.devices},
        devices=[
            EnergyDevice(label=d.label, scope=d.scope, name=d.name, identity=d.identity, energy_j=d.energy_j)
            for d in reading.devices
        ],
        window=EnergyWindow(start_unix_s=reading.start_unix_s, end_unix_s=reading.end_unix_s, duration_s=window_s),
        window_s=window_s,
        avg_power_w=_ratio(energy_j, window_s),
        baseline=baseline,
        adjusted_energy_j=adjusted,
        energy_per_output_token_j=_ratio(energy_j, output_tokens),
        energy_per_token_j=_ratio(energy_j, total_tokens),
        tokens_per_joule=_ratio(output_tokens, energy_j) if energy_j else None,
        adjusted_energy_per_output_token_j=_ratio(adjusted, output_tokens),
        carbon=footprint,
        carbon_gco2e=footprint.gco2e if footprint else None,
        power_samples=reading.power_samples,
        extra=dict(reading.extra),
        warnings=warnings,
    )
