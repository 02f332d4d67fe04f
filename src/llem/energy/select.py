"""Choosing the energy sampler: an explicit choice, or ``auto``'s best available with its reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llem.config.schema import EnergySampler as SamplerChoice
from llem.energy.base import EnergySampler, EnergySamplerError, SamplerUnavailable
from llem.energy.codecarbon import CodecarbonSampler
from llem.energy.nvml import NvmlSampler
from llem.energy.rapl import RaplSampler
from llem.energy.zeus import ZeusSampler
from llem.user_config import MeasurementSettings

# auto's preference, best first.
AUTO_ORDER: tuple[type[EnergySampler], ...] = (ZeusSampler, NvmlSampler, RaplSampler, CodecarbonSampler)
SAMPLERS = {cls.name: cls for cls in AUTO_ORDER}


@dataclass
class Selection:
    """The open sampler (None: throughput only), what was asked, and why better ones were passed over."""

    requested: str | None  # auto | nvml | zeus | rapl | codecarbon | None
    sampler: EnergySampler | None
    unavailable: dict[str, str] = field(default_factory=dict)  # sampler name -> reason

    @property
    def chosen(self) -> str | None:
        return self.sampler.name if self.sampler else None

    def summary(self) -> str:
        """One line for the console."""
        passed = "; ".join(self.unavailable.values())
        if self.requested is None:
            return "energy: not measured (energy_sampler=null: throughput only)"
        if self.sampler is None:
            return f"energy: not measured: no energy source here ({passed}); energy figures are null"
        if not self.sampler.measured:
            lead = f"no energy counter here ({passed}); " if passed else ""
            return f"energy: {lead}{self.sampler.method}: an estimate, not a measurement"
        why = f"; passed over: {passed}" if passed else ""
        return f"energy: measured by {self.sampler.method} (energy_sampler={self.requested}{why})"

    def record(self) -> dict[str, Any]:
        return {"requested": self.requested, "chosen": self.chosen, "unavailable": dict(self.unavailable)}


def select_sampler(choice: SamplerChoice | None, settings: MeasurementSettings) -> Selection:
    """Open the configured sampler. An explicit choice that cannot run is an :class:`EnergySamplerError`."""
    if choice is None:
        return Selection(None, None)
    if choice is not SamplerChoice.auto:
        try:
            return Selection(choice.value, SAMPLERS[choice.value].open(settings))
        except SamplerUnavailable as err:
            fix = f"{err.fix}, or set" if err.fix else "set"
            raise EnergySamplerError(
                f"energy_sampler={choice.value}: {err.reason}; {fix} energy_sampler=auto (the best source available) "
                "or energy_sampler=null (throughput only)"
            ) from err
    unavailable = {}
    for cls in AUTO_ORDER:
        try:
            sampler = cls.open(settings)
        except SamplerUnavailable as err:
            unavailable[cls.name] = err.reason
            continue
        skip = sampler.auto_skip_reason()
        if skip is None:
            return Selection("auto", sampler, unavailable)
        sampler.close()
        unavailable[cls.name] = skip
    return Selection("auto", None, unavailable)
