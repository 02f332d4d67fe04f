"""Choosing the energy sampler: an explicit choice, or ``auto``'s best available with its reasons."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llem.config.schema import EnergySampler as SamplerChoice
from llem.energy.base import EnergySampler, EnergySamplerError, SamplerUnavailable
from llem.energy.codecarbon import CodecarbonSampler
from llem.energy.devices import init_nvml, visible_gpus
from llem.energy.nvml import NvmlSampler
from llem.energy.rapl import RaplSampler, discover_zones
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
            raise EnergySamplerError(_cannot_run(choice, err)) from err
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


def _cannot_run(choice: SamplerChoice, err: SamplerUnavailable) -> str:
    fix = f"{err.fix}, or set" if err.fix else "set"
    return (
        f"energy_sampler={choice.value}: {err.reason}; {fix} energy_sampler=auto (the best source available) "
        "or energy_sampler=null (throughput only)"
    )


def sampler_problem(choice: SamplerChoice | None, settings: MeasurementSettings) -> str | None:
    """Why the explicitly chosen sampler cannot run on this machine, found without opening it (no
    torch, no measurement thread); None when it may run, and for ``auto`` and null, which always can."""
    if choice is None or choice is SamplerChoice.auto:
        return None
    try:
        _check_source(choice, settings)
    except SamplerUnavailable as err:
        return _cannot_run(choice, err)
    return None


def _check_source(choice: SamplerChoice, settings: MeasurementSettings) -> None:
    """Raise :class:`SamplerUnavailable` when ``choice``'s package or device is missing here."""
    package = {
        SamplerChoice.zeus: ("zeus", "Zeus", "llem[zeus]"),
        SamplerChoice.codecarbon: ("codecarbon", "codecarbon", "llem[codecarbon]"),
    }
    if choice in package:
        module, label, extra = package[choice]
        if importlib.util.find_spec(module) is None:
            raise SamplerUnavailable(f"{label}: package not installed", f"pip install '{extra}'")
    if choice is SamplerChoice.rapl:
        discover_zones(Path(settings.powercap_root))
    elif choice in (SamplerChoice.nvml, SamplerChoice.zeus):
        try:
            nvml = init_nvml()
            try:
                visible_gpus(nvml)
            finally:
                nvml.nvmlShutdown()
        except SamplerUnavailable as err:
            if choice is SamplerChoice.zeus:
                raise SamplerUnavailable(f"Zeus: {err.reason}", err.fix) from err
            raise
