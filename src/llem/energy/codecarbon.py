"""codecarbon's estimate (optional extra ``llem[codecarbon]``): labelled ``codecarbon-estimate``.

codecarbon models CPU power from the processor's TDP and load, RAM power from its size, and reads
GPUs through NVML. It is an estimate, never a measurement: ``measured`` is false and the result
says so. It runs offline (``OfflineEmissionsTracker``), writes no files, and has no idle baseline.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from llem.energy.base import DeviceEnergy, EnergyReading, EnergySampler, SamplerUnavailable
from llem.user_config import MeasurementSettings

J_PER_KWH = 3.6e6
# codecarbon needs a country for its own carbon figure; recorded as an assumption when not configured.
DEFAULT_COUNTRY = "USA"


def _import_tracker() -> Any:
    """``OfflineEmissionsTracker``, imported so that an unusable ``amdsmi`` does not fake an AMD GPU.

    codecarbon reports an AMD GPU whenever the ``amdsmi`` module imports, and Zeus installs it. Without
    the ROCm kernel driver (``/dev/kfd``) it is hidden during the import.
    """
    hide = "amdsmi" not in sys.modules and not os.path.exists("/dev/kfd")
    if hide:
        sys.modules["amdsmi"] = None  # type: ignore[assignment]  # makes `import amdsmi` raise ImportError
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError as err:
        raise SamplerUnavailable("codecarbon: package not installed", "pip install 'llem[codecarbon]'") from err
    finally:
        if hide:
            del sys.modules["amdsmi"]
    return OfflineEmissionsTracker


class CodecarbonSampler(EnergySampler):
    """An energy estimate from one codecarbon tracking span."""

    name = "codecarbon"
    method = "codecarbon-estimate"
    measured = False
    supports_baseline = False

    def __init__(self, tracker_cls: Any, settings: MeasurementSettings) -> None:
        self.tracker_cls, self.settings = tracker_cls, settings
        self.country = settings.datacenter_location or DEFAULT_COUNTRY
        self._tracker: Any = None
        self._start_s = 0.0

    @classmethod
    def open(cls, settings: MeasurementSettings) -> CodecarbonSampler:
        return cls(_import_tracker(), settings)

    def identities(self) -> list[str]:
        return ["codecarbon"]

    def begin_window(self) -> None:
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self._tracker = self.tracker_cls(
            country_iso_code=self.country,
            output_methods=[],
            log_level="error",
            allow_multiple_runs=True,
            measure_power_secs=1,
        )
        self._tracker.start()
        self._start_s = time.time()

    def end_window(self) -> EnergyReading:
        end_s = time.time()  # the window closes here; stop() then books the span up to now
        emissions_kg = self._tracker.stop()
        data = self._tracker.final_emissions_data
        devices = []
        for label, scope, kwh in (
            ("cpu", "cpu", data.cpu_energy),
            ("gpu", "gpu", data.gpu_energy),
            ("ram", "dram", data.ram_energy),
        ):
            if kwh:
                devices.append(DeviceEnergy(label, scope, kwh * J_PER_KWH, f"codecarbon-{label}", None))
        warnings = [] if devices else ["codecarbon estimated no energy for the window; energy is null"]
        extra = {
            "codecarbon_version": getattr(sys.modules.get("codecarbon"), "__version__", None),
            "codecarbon_emissions_gco2e": None if emissions_kg is None else emissions_kg * 1000.0,
            "codecarbon_country": self.country,
            "codecarbon_country_assumed": self.settings.datacenter_location is None,
            "codecarbon_cpu_model": getattr(data, "cpu_model", None),
        }
        return EnergyReading(self.method, False, self._start_s, end_s, devices, None, warnings, extra)
