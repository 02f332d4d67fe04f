"""The small protocol every inference engine implements, and what a run of it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from llem.datasets import Prompt
from llem.progress import Progress


@dataclass
class RequestRecord:
    """One prompt's measured generation.

    Times are seconds from the request's arrival: the start of the engine's ``generate`` call, which
    hands every prompt of the run over at once (offline serving), on a monotonic clock. This one
    definition holds for every engine (see :data:`LATENCY_METHOD`).
    """

    input_tokens: int  # prompt tokens after truncation, no padding
    output_tokens: int  # generated tokens up to and including the first EOS; no padding
    ttft_s: float | None  # time to first token, from arrival (queueing included)
    itl_s: list[float] = field(default_factory=list)  # inter-token latency of each later token
    finished_by_eos: bool = False
    queue_s: float | None = None  # from arrival until the engine began processing it
    completions: int = 1  # output sequences generated for the prompt (vLLM's n); their tokens are summed


# How every engine's per-request latency is defined; recorded in each result's ``latency.method``.
LATENCY_METHOD = (
    "per request, from its arrival: every prompt of the run is handed to the engine at the start of the "
    "timed window (offline serving); TTFT = first generated token's time - arrival (queueing included), "
    "ITL = time between consecutive generated tokens of the request, taken when the engine returns each "
    "decoding step; queue = arrival until the engine began processing the request"
)


@dataclass
class BatchRecord:
    """One engine call on a batch of prompts."""

    size: int  # requests in the batch
    padded_input_len: int  # prompt length after left padding, tokens (the longest prompt without padding)
    forward_passes: int  # decoding steps the engine ran (prefill included)
    wall_s: float  # seconds from submission to the last token
    step_lengths: list[int] = field(default_factory=list)  # sequence length after each step (empty: not recorded)
    cache_len: int | None = None  # static KV cache: keys every step attends to (None: a growing cache)


@dataclass
class EngineRun:
    """The outcome of running a list of prompts."""

    requests: list[RequestRecord]
    batches: list[BatchRecord]
    texts: list[str] = field(default_factory=list)  # decoded outputs, for inspection


@dataclass
class LoadInfo:
    """Model loading facts."""

    model_path: str  # the folder or hub id actually loaded
    load_time_s: float  # wall time of tokenizer + model load (and compile setup)
    device: str  # e.g. "cpu", "cuda:0"
    n_parameters: int


class InferenceEngine(Protocol):
    """An engine loads one model and generates for lists of prompts."""

    name: str

    def load(self) -> LoadInfo:
        """Load the tokenizer and model; called once, before any generation."""

    def generate(self, prompts: list[Prompt], progress: Progress | None = None) -> EngineRun:
        """Generate for ``prompts`` in the configured batches; blocks until all are done.

        ``progress`` is updated only where the engine already stops to take a time (after a batch or
        a decoding step), never with a synchronisation of its own.
        """

    def synchronize(self) -> None:
        """Wait for queued device work (so a timing window closes on finished work)."""

    def effective_config(self) -> dict[str, Any]:
        """The value the engine used for every setting, including those left at None."""

    def flops(self, run: EngineRun) -> dict[str, Any]:
        """The floating-point work ``run`` did, with its method and confidence."""

    def memory(self) -> dict[str, Any]:
        """Device memory facts (peak allocated/reserved) since load."""

    def tokenizer(self) -> Any:
        """The tokenizer (datasets that count tokens need it)."""

    def close(self) -> None:
        """Release the model and device memory."""
