"""The Hugging Face hub as llem sees it: reachable or not (asked once, briefly), and what is cached here.

Asking first spares the user huggingface_hub's retries (about 35 s per file) when the machine is offline.
Only the standard library and ``huggingface_hub`` (no torch) are imported.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

# Seconds the reachability probe may take, name lookup included.
PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "ON", "YES", "TRUE"}


def offline_mode() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids the hub."""
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def endpoint() -> tuple[str, str, int]:
    """``(scheme, host, port)`` of the hub: ``$HF_ENDPOINT``, else https://huggingface.co."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    scheme = "http" if url.scheme == "http" else "https"
    return scheme, url.hostname or "huggingface.co", url.port or (80 if scheme == "http" else 443)


def first_hop() -> tuple[str, int]:
    """``(host, port)`` a connection to the hub opens first: the proxy that ``$HTTPS_PROXY`` /
    ``$HTTP_PROXY`` name for it (unless ``$NO_PROXY`` exempts the hub), else the hub itself."""
    scheme, host, port = endpoint()
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return host, port
    url = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    return url.hostname or host, url.port or (443 if url.scheme == "https" else 80)


def hub_reachable() -> bool:
    """Whether the hub may be used: ``HF_HUB_OFFLINE`` is not set and a TCP connection to it (or
    to the proxy in front of it) opens within ``PROBE_TIMEOUT_S`` (asked once per process)."""
    return not offline_mode() and _connects(*first_hop())


@functools.cache
def _connects(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``PROBE_TIMEOUT_S`` seconds, name
    lookup included (which a socket timeout alone does not bound)."""
    outcome: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe, name="llem-hub-probe", daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S)
    return bool(outcome and outcome[0])


def cached_snapshot(repo_id: str) -> Path | None:
    """The local snapshot folder of hub model ``repo_id`` when its ``config.json`` is in the
    Hugging Face cache, else None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an id huggingface_hub rejects is not cached
        return None
    return Path(found).parent if isinstance(found, str) else None
