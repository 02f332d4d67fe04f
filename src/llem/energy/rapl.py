"""llem's own reader of the Linux powercap tree (RAPL): CPU package and DRAM energy.

Zones ``<root>/intel-rapl:<n>`` named ``package-<n>`` are CPU packages (AMD's packages appear
under the same driver and names); their sub-zones named ``dram`` are memory. ``core``/``uncore``
sub-zones lie inside the package and ``psys``/``intel-rapl-mmio`` duplicate it, so they are not
added. ``energy_uj`` (µJ) wraps at ``max_energy_range_uj``: a thread reads every zone each
``POLL_S`` seconds so that any number of wraps in a long window is counted.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from llem.energy.base import DeviceEnergy, EnergyReading, EnergySampler, SamplerUnavailable
from llem.user_config import MeasurementSettings

# Read often enough that no zone can wrap twice between reads (wrap ranges are >= ~65 kJ).
POLL_S = 1.0
ZONE = re.compile(r"intel-rapl:(\d+)$")
SUBZONE = re.compile(r"intel-rapl:(\d+):(\d+)$")
PERMISSION_FIX = (
    "energy_uj is readable by root only since Linux 5.10: run as root, make it readable "
    "(sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj /sys/class/powercap/intel-rapl:*/*/energy_uj), "
    "or point measurement.powercap_root at a readable copy"
)


@dataclass
class RaplZone:
    """One counted powercap zone."""

    path: Path
    label: str  # cpu<package>, dram<package>
    scope: str  # cpu | dram
    name: str  # the zone's own name file
    max_energy_range_uj: int


def read_uj(path: Path) -> int:
    """An integer file of the powercap tree; permission problems become :class:`SamplerUnavailable`."""
    try:
        with open(path, encoding="ascii") as fh:
            return int(fh.read().strip())
    except PermissionError as err:
        raise SamplerUnavailable(f"RAPL: {path} is not readable (permission denied)", PERMISSION_FIX) from err
    except (OSError, ValueError) as err:
        raise SamplerUnavailable(f"RAPL: cannot read {path} ({err})") from err


def _name(zone: Path) -> str:
    try:
        return (zone / "name").read_text(encoding="ascii").strip()
    except OSError as err:
        raise SamplerUnavailable(f"RAPL: cannot read {zone / 'name'} ({err})") from err


def discover_zones(root: Path) -> list[RaplZone]:
    """The package and DRAM zones under ``root``; every one must be readable."""
    if not root.is_dir():
        raise SamplerUnavailable(f"RAPL: no powercap tree at {root}", "set measurement.powercap_root")
    zones = []
    for path in sorted(root.glob("intel-rapl:*"), key=lambda p: [int(n) for n in re.findall(r"\d+", p.name)]):
        package = ZONE.match(path.name)
        sub = SUBZONE.match(path.name)
        name = _name(path)
        if package and name.startswith("package"):
            label, scope = f"cpu{package.group(1)}", "cpu"
        elif sub and name == "dram":
            label, scope = f"dram{sub.group(1)}", "dram"
        else:
            continue
        zones.append(RaplZone(path, label, scope, name, read_uj(path / "max_energy_range_uj")))
    # Sub-zones usually sit inside their package's folder as well as beside it: keep one of each.
    for path in sorted(root.glob("intel-rapl:*/intel-rapl:*")):
        sub = SUBZONE.match(path.name)
        if sub and _name(path) == "dram" and not any(z.label == f"dram{sub.group(1)}" for z in zones):
            zones.append(RaplZone(path, f"dram{sub.group(1)}", "dram", "dram", read_uj(path / "max_energy_range_uj")))
    if not zones:
        raise SamplerUnavailable(f"RAPL: no package zone under {root}")
    for zone in zones:
        read_uj(zone.path / "energy_uj")
    return zones


def advance_uj(previous_uj: int, current_uj: int, max_energy_range_uj: int) -> int:
    """Energy between two readings of one counter, µJ, allowing for one wrap."""
    delta = current_uj - previous_uj
    return delta if delta >= 0 else delta + max_energy_range_uj + 1


class RaplSampler(EnergySampler):
    """CPU package and DRAM energy from the powercap tree."""

    name = "rapl"
    method = "rapl"

    def __init__(self, zones: list[RaplZone], poll_s: float = POLL_S) -> None:
        self.zones, self.poll_s = zones, poll_s
        self._lock = threading.Lock()
        self._last_uj: list[int] = []
        self._total_uj: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_s = 0.0

    @classmethod
    def open(cls, settings: MeasurementSettings) -> RaplSampler:
        return cls(discover_zones(Path(settings.powercap_root)))

    def identities(self) -> list[str]:
        return [f"{z.path.name}:{z.name}" for z in self.zones]

    def _read_all(self) -> None:
        with self._lock:
            for i, zone in enumerate(self.zones):
                now = read_uj(zone.path / "energy_uj")
                self._total_uj[i] += advance_uj(self._last_uj[i], now, zone.max_energy_range_uj)
                self._last_uj[i] = now

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self._read_all()
            except SamplerUnavailable:  # the closing read raises it again, for the result
                return

    def begin_window(self) -> None:
        self._last_uj = [read_uj(z.path / "energy_uj") for z in self.zones]
        self._total_uj = [0] * len(self.zones)
        self._start_s = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llem-rapl", daemon=True)
        self._thread.start()

    def end_window(self) -> EnergyReading:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()  # no read after the closing one
        self._read_all()
        end_s = time.time()
        devices, warnings = [], []
        for zone, total_uj in zip(self.zones, self._total_uj):
            energy_j: float | None = total_uj / 1e6
            if total_uj == 0:
                warnings.append(f"{zone.label}: the RAPL counter did not tick during the window; its energy is dropped")
                energy_j = None
            devices.append(DeviceEnergy(zone.label, zone.scope, energy_j, f"{zone.path.name}:{zone.name}", zone.name))
        return EnergyReading(self.method, True, self._start_s, end_s, devices, None, warnings)
