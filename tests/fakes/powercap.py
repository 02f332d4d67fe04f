"""A fake Linux powercap tree in a folder, with a writer thread advancing each zone's ``energy_uj``.

Each counted zone draws a constant known power, so the energy of any wall-clock window is
``power_w × seconds``. Counters wrap at ``max_energy_range_uj`` like the kernel's. Files are
replaced atomically, so a reader never sees a half-written value.

A reader sees the value of the last write, so on a loaded machine, where the writer thread wakes
late, a reading can be stale by the gap between two writes. ``tolerance_j`` allows for the gaps
that actually occurred around a window, on top of the relative tolerance.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Zone:
    path: str  # relative to the root, e.g. intel-rapl:0 or intel-rapl:0/intel-rapl:0:0
    name: str  # package-0, dram, core, psys
    power_w: float
    max_energy_range_uj: int = 262_143_328_850
    start_uj: int = 0


def default_zones() -> list[Zone]:
    """An Intel package with DRAM and core sub-zones, an AMD-style package (core only), psys and mmio."""
    return [
        Zone("intel-rapl:0", "package-0", 42.0, start_uj=261_000_000_000),
        Zone("intel-rapl:0/intel-rapl:0:0", "dram", 7.5),
        Zone("intel-rapl:0/intel-rapl:0:1", "core", 30.0),
        # AMD exposes its packages through the same driver and names, without a DRAM zone; this one
        # wraps every ~2.5 s.
        Zone("intel-rapl:1", "package-1", 20.0, max_energy_range_uj=50_000_000, start_uj=45_000_000),
        Zone("intel-rapl:1/intel-rapl:1:0", "core", 15.0),
        Zone("intel-rapl:2", "psys", 120.0),
        Zone("intel-rapl-mmio:0", "package-0", 42.0),
    ]


COUNTED = {"intel-rapl:0": "cpu0", "intel-rapl:0/intel-rapl:0:0": "dram0", "intel-rapl:1": "cpu1"}


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="ascii")
    os.replace(tmp, path)


class FakePowercap:
    """Builds the tree under ``root`` and, while started, advances every zone every ``tick_s``."""

    def __init__(self, root: Path, zones: list[Zone] | None = None, tick_s: float = 0.002) -> None:
        self.root, self.zones, self.tick_s = root, zones or default_zones(), tick_s
        self.t0 = time.time()
        for zone in self.zones:
            folder = root / zone.path
            folder.mkdir(parents=True, exist_ok=True)
            _write(folder / "name", zone.name + "\n")
            _write(folder / "max_energy_range_uj", f"{zone.max_energy_range_uj}\n")
            # sysfs also lists sub-zones at the top level (as links)
            if "/" in zone.path and not (root / folder.name).exists():
                (root / folder.name).symlink_to(folder, target_is_directory=True)
        self.write_times: list[float] = []  # unix seconds of every write, ascending
        self._write_all(self.t0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def counter_uj(self, zone: Zone, unix_s: float) -> int:
        raw = zone.start_uj + int(zone.power_w * 1e6 * (unix_s - self.t0))
        return raw % (zone.max_energy_range_uj + 1)

    def energy_between_j(self, path: str, start_unix_s: float, end_unix_s: float) -> float:
        zone = next(z for z in self.zones if z.path == path)
        return zone.power_w * (end_unix_s - start_unix_s)

    def write_gap_s(self, unix_s: float) -> float:
        """Seconds between the writes either side of ``unix_s``: how stale a reading then could be."""
        i = bisect.bisect_right(self.write_times, unix_s)
        before = self.write_times[i - 1] if i > 0 else self.t0
        after = self.write_times[i] if i < len(self.write_times) else time.time()
        return after - before

    def max_write_gap_s(self) -> float:
        """The longest interval between two writes so far, seconds."""
        times = [self.t0, *self.write_times]
        return max(b - a for a, b in zip(times, times[1:]))

    def tolerance_j(self, path: str, start_unix_s: float, end_unix_s: float, rel: float = 0.01) -> float:
        """``rel`` of the known energy, plus what late writes at either end of the window can hide."""
        zone = next(z for z in self.zones if z.path == path)
        stale_s = self.write_gap_s(start_unix_s) + self.write_gap_s(end_unix_s)
        return rel * self.energy_between_j(path, start_unix_s, end_unix_s) + zone.power_w * stale_s

    def _write_all(self, now: float) -> None:
        for zone in self.zones:
            _write(self.root / zone.path / "energy_uj", f"{self.counter_uj(zone, now)}\n")
        self.write_times.append(now)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self._write_all(time.time())

    def __enter__(self) -> FakePowercap:
        self._thread = threading.Thread(target=self._run, name="fake-powercap", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
