"""The measured part of a result: token counts, throughput and latency from an engine run."""

from __future__ import annotations

from dataclasses import dataclass

from llem.engines.base import LATENCY_METHOD, EngineRun
from llem.results.schema import Latency, Throughput, Tokens
from llem.results.stats import distribution

OUTPUT_COUNTING = "output = generated tokens up to and including the first EOS; no padding"
THROUGHPUT_WINDOW = "timed inference window (all batches, device synchronised at both ends)"


@dataclass
class RunFigures:
    """Token counts, throughput and latency of one timed window."""

    tokens: Tokens
    throughput: Throughput
    latency: Latency


def summarize_run(run: EngineRun, inference_time_s: float) -> RunFigures:
    """Tokens, throughputs (per second of the ``inference_time_s`` window) and latencies of ``run``."""
    requests = run.requests
    input_tokens = sum(r.input_tokens for r in requests)
    output_tokens = sum(r.output_tokens for r in requests)
    total = input_tokens + output_tokens
    ttft = [r.ttft_s for r in requests if r.ttft_s is not None]
    itl = [gap for r in requests for gap in r.itl_s]
    queue = [r.queue_s for r in requests if r.queue_s is not None]
    return RunFigures(
        tokens=Tokens(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=total,
            requests=len(requests),
            requests_stopped_by_eos=sum(r.finished_by_eos for r in requests),
            batches=len(run.batches),
            counting=OUTPUT_COUNTING,
        ),
        throughput=Throughput(
            output_tokens_per_s=output_tokens / inference_time_s,
            total_tokens_per_s=total / inference_time_s,
            requests_per_s=len(requests) / inference_time_s,
            window=THROUGHPUT_WINDOW,
        ),
        latency=Latency(
            ttft=distribution(ttft),
            itl=distribution(itl),
            queue=distribution(queue),
            batch_wall=distribution([b.wall_s for b in run.batches]),
            method=LATENCY_METHOD,
        ),
    )
