"""The interface every energy sampler implements, and what one measurement window returns.

A sampler is opened once per experiment (``open`` raises :class:`SamplerUnavailable` with a short
reason when its source is missing here), then measures windows: ``begin_window`` /
``end_window`` bracket exactly the timed inference call. Energies are joules, powers watts,
times seconds (wall clock, ``time.time``).
"""

from __future__ import annotations

import statistics
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from llem.errors import LlemError
from llem.user_config import MeasurementSettings

# Consecutive windows of this length give the idle power samples of a counter-based sampler.
IDLE_WINDOW_S = 0.5


class SamplerUnavailable(Exception):
    """A sampler's source is missing on this machine; ``reason`` says what, ``fix`` how to get it."""

    def __init__(self, reason: str, fix: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


class EnergySamplerError(LlemError):
    """The energy sampler the experiment asked for cannot measure here (a user-fixable setting)."""


@dataclass
class DeviceEnergy:
    """Energy of one device over a window; ``energy_j`` is None when the reading was dropped."""

    label: str  # gpu0, cpu0, dram0 (the engine's GPU index; the RAPL package index)
    scope: str  # gpu | cpu | dram
    energy_j: float | None
    identity: str  # stable identity: GPU UUID, powercap zone, ...
    name: str | None = None  # GPU model or zone name


@dataclass
class EnergyReading:
    """What a sampler measured over one window."""

    method: str  # zeus-counter | nvml-counter | nvml-power-integration | rapl | codecarbon-estimate
    measured: bool  # False for an estimate
    start_unix_s: float
    end_unix_s: float
    devices: list[DeviceEnergy]
    power_samples: int | None = None  # samples integrated (power polling), None for counters
    warnings: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # sampler-specific facts recorded in the result

    @property
    def window_s(self) -> float:
        return self.end_unix_s - self.start_unix_s

    @property
    def energy_j(self) -> float | None:
        """Sum over devices, or None if any device's reading was dropped (never a partial sum)."""
        values = [d.energy_j for d in self.devices]
        if not values or any(v is None for v in values):
            return None
        return float(sum(values))  # type: ignore[arg-type]


@dataclass
class IdlePower:
    """Idle power of the measured devices together: time-weighted mean and spread of ``count`` samples."""

    power_w: float  # energy over the time measured, watts
    std_w: float  # spread of the samples, watts
    count: int
    duration_s: float  # seconds actually measured (not the duration asked for)
    warnings: list[str] = field(default_factory=list)  # e.g. a polled trace the polling did not resolve


class EnergySampler(ABC):
    """One energy source. Subclasses set ``name`` (the config value) and ``method``."""

    name: ClassVar[str]
    measured: ClassVar[bool] = True
    supports_baseline: ClassVar[bool] = True
    method: str

    @classmethod
    @abstractmethod
    def open(cls, settings: MeasurementSettings) -> EnergySampler:
        """Connect to the source; raise :class:`SamplerUnavailable` when it is not usable here."""

    @abstractmethod
    def identities(self) -> list[str]:
        """Stable identities of the measured devices (keys the idle baseline cache)."""

    @abstractmethod
    def begin_window(self) -> None:
        """Open a measurement window now."""

    @abstractmethod
    def end_window(self) -> EnergyReading:
        """Close the open window now and return its reading."""

    def idle_power(self, duration_s: float) -> IdlePower:
        """Idle power over ``duration_s`` from consecutive equal windows of about ``IDLE_WINDOW_S``.

        The power is the windows' total energy over their total time, which is the duration recorded
        (each window's power is one sample for the spread). A window whose reading was dropped
        (counter wrap) is left out.
        """
        n = max(1, round(duration_s / IDLE_WINDOW_S))
        energies_j: list[float] = []
        windows_s: list[float] = []
        for _ in range(n):
            self.begin_window()
            time.sleep(duration_s / n)
            reading = self.end_window()
            if reading.energy_j is not None and reading.window_s > 0:
                energies_j.append(reading.energy_j)
                windows_s.append(reading.window_s)
        if not windows_s:
            raise SamplerUnavailable("no idle power sample could be read")
        samples_w = [e / t for e, t in zip(energies_j, windows_s)]
        std = statistics.stdev(samples_w) if len(samples_w) > 1 else 0.0
        return IdlePower(sum(energies_j) / sum(windows_s), std, len(samples_w), sum(windows_s))

    def notes(self) -> list[str]:
        """Standing caveats of this source (not of one window), recorded with every reading."""
        return []

    def auto_skip_reason(self) -> str | None:
        """Why ``auto`` should pass this open source over for the next one, or None to use it."""
        return None

    def close(self) -> None:  # noqa: B027 (most sources hold nothing to release)
        """Release the source."""
