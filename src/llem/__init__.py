"""llem: measure what LLM inference costs (energy, throughput, latency, memory, FLOPs)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llem")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
