"""The idle power baseline, measured before the model loads, and its cache.

Strategies: ``fresh`` measures every experiment; ``cached`` reuses a measurement younger than
``cache_ttl_seconds``; ``validated`` is ``cached`` plus a short spot-check every
``validation_interval`` experiments, re-measuring fully when the spot-check drifts more than
``drift_threshold`` (relative). The cache lives in ``<llem cache>/baselines/``, one file per
host, measured devices and method; the validated strategy keeps its experiment counter there.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Any

from llem.config.schema import BaselineConfig, BaselineStrategy
from llem.energy.base import EnergySampler, IdlePower
from llem.paths import cache_dir
from llem.results.io import write_json_atomic

# Length of the validated strategy's spot-check, seconds (never longer than the full baseline).
SPOT_CHECK_S = 5.0


def cache_path(sampler: EnergySampler, root: Path | None = None) -> Path:
    """The cache file of this host, these devices and this method."""
    key = json.dumps([platform.node(), sampler.method, sorted(sampler.identities())])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return (root or cache_dir() / "baselines") / f"{digest}.json"


def _measure(sampler: EnergySampler, duration_s: float) -> dict[str, Any]:
    """A fresh measurement: ``duration_s`` is what was asked for, the record holds the time measured."""
    idle: IdlePower = sampler.idle_power(duration_s)
    return {
        "power_w": idle.power_w,
        "std_w": idle.std_w,
        "samples": idle.count,
        "duration_s": idle.duration_s,
        "requested_duration_s": duration_s,
        "warnings": idle.warnings,
        "method": sampler.method,
        "measured_at_unix_s": time.time(),
        "host": platform.node(),
        "devices": sorted(sampler.identities()),
        "experiments_since_check": 0,
    }


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def obtain_baseline(cfg: BaselineConfig, sampler: EnergySampler, root: Path | None = None) -> dict[str, Any]:
    """The baseline record for the result: power, spread, when and how it was obtained."""
    if cfg.strategy is BaselineStrategy.fresh:
        return _record(_measure(sampler, cfg.duration_seconds), cfg, "measured")
    path = cache_path(sampler, root)
    cached = _read(path)
    age_s = time.time() - cached["measured_at_unix_s"] if cached else None
    if cached is None or age_s is None or age_s > cfg.cache_ttl_seconds or age_s < 0:
        why = "no cached baseline" if cached is None else f"cached baseline expired ({age_s:.0f} s old)"
        fresh = _measure(sampler, cfg.duration_seconds)
        write_json_atomic(path, fresh)
        return _record(fresh, cfg, f"measured ({why})")
    spot = None
    source = "cache"
    if cfg.strategy is BaselineStrategy.validated:
        cached["experiments_since_check"] = cached.get("experiments_since_check", 0) + 1
        if cached["experiments_since_check"] >= cfg.validation_interval:
            spot = sampler.idle_power(min(SPOT_CHECK_S, cfg.duration_seconds))
            drift = abs(spot.power_w - cached["power_w"]) / cached["power_w"] if cached["power_w"] else float("inf")
            spot_record = {
                "power_w": spot.power_w,
                "std_w": spot.std_w,
                "samples": spot.count,
                "duration_s": spot.duration_s,
                "drift": drift,
                "warnings": spot.warnings,
            }
            if drift > cfg.drift_threshold:
                fresh = _measure(sampler, cfg.duration_seconds)
                write_json_atomic(path, fresh)
                source = f"re-measured: spot-check drifted {drift:.1%} (> {cfg.drift_threshold:.0%})"
                return _record(fresh, cfg, source, spot_record)
            cached["experiments_since_check"] = 0
            source = f"cache, spot-checked (drift {drift:.1%})"
            write_json_atomic(path, cached)
            return _record(cached, cfg, source, spot_record, age_s)
        write_json_atomic(path, cached)
    return _record(cached, cfg, source, None, age_s)


def _record(
    data: dict[str, Any],
    cfg: BaselineConfig,
    source: str,
    spot_check: dict[str, Any] | None = None,
    cache_age_s: float | None = None,
) -> dict[str, Any]:
    return {
        "measured": True,
        "power_w": data["power_w"],
        "std_w": data["std_w"],
        "samples": data["samples"],
        "duration_s": data["duration_s"],  # seconds actually measured
        "requested_duration_s": data.get("requested_duration_s"),  # absent from caches of older versions
        "method": data["method"],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(data["measured_at_unix_s"])),
        "cache_age_s": cache_age_s,
        "strategy": cfg.strategy.value,
        "source": source,
        "spot_check": spot_check,
        "warnings": list(data.get("warnings", [])) + list((spot_check or {}).get("warnings", [])),
    }
