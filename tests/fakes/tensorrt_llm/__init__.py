"""A recording fake of the ``tensorrt_llm`` package (1.2.1's LLM API), for tests without a GPU.

It records every call (:data:`CALLS`), accepts only the argument names of the recorded API
(``tests/facts/tensorrt_llm_1_2_1.json``) and refuses others as TensorRT-LLM does (ValueError). It does
not pretend to generate text: every request streams ``max_tokens`` copies of :data:`TOKEN`, one per
step, or the tokens of :data:`SCRIPT` when a test sets it. Install it with :func:`install`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.fakes.tensorrt_llm.api import default, facts, fields, llm_fields

__version__ = facts()["version"]
TOKEN = 7  # the token every fake step returns
CALLS: list[tuple[str, dict[str, Any]]] = []  # (what was called, its arguments), in order
SCRIPT: list[int] | None = None  # the tokens each sequence returns instead, up to max_tokens


def _sampling_field(name: str, spec: dict[str, Any]) -> tuple[str, Any, Any]:
    return name, Any, dataclasses.field(default=default(spec))


_SamplingBase = dataclasses.make_dataclass(
    "_SamplingBase", [_sampling_field(n, s) for n, s in fields("SamplingParams").items()], kw_only=True
)


class SamplingParams(_SamplingBase):  # type: ignore[misc, valid-type]
    """The recorded SamplingParams fields; ``best_of`` defaults to ``n``; greedy with best_of > 1 is refused."""

    def __post_init__(self) -> None:
        self.best_of = self.best_of or self.n
        if self.best_of < self.n:
            raise ValueError(f"best_of ({self.best_of}) cannot be less than n ({self.n})")
        greedy = not self.use_beam_search and self.top_k in (None, 1) and self.top_p in (None, 0.0)
        if greedy and self.best_of > 1:
            raise ValueError("Greedy decoding in the LLM API does not allow multiple returns.")
        CALLS.append(("SamplingParams", dataclasses.asdict(self)))


@dataclasses.dataclass
class CompletionOutput:
    index: int
    text: str = ""
    token_ids: list[int] = dataclasses.field(default_factory=list)
    finish_reason: str | None = None
    token_ids_diff: list[int] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool = False


class _Stream:
    """What ``generate_async(..., streaming=True)`` returns: one step per token, as an async iterator."""

    def __init__(self, prompt: list[int], params: SamplingParams) -> None:
        self.prompt, self.params = prompt, params

    async def __aiter__(self):
        sequences = self.params.best_of if self.params.use_beam_search else self.params.n
        tokens = _tokens(self.params)
        outputs = [CompletionOutput(index=i) for i in range(sequences)]
        for step, token in enumerate(tokens):
            for out in outputs:
                out.token_ids_diff = [token]
                out.token_ids = [*out.token_ids, token]
                out.text += "x"
                out.finish_reason = "length" if step == len(tokens) - 1 else None
            yield RequestOutput(self.prompt, outputs, finished=step == len(tokens) - 1)


def _tokens(params: SamplingParams) -> list[int]:
    return (SCRIPT or [TOKEN] * params.max_tokens)[: params.max_tokens]


class LLM:
    """``tensorrt_llm.LLM``: the PyTorch backend (TorchLlmArgs)."""

    args_class = "TorchLlmArgs"

    def __init__(self, **kwargs: Any) -> None:
        CALLS.append((f"{type(self).__name__}.__init__", kwargs))
        known = llm_fields(self.args_class)
        for key in kwargs:
            if key not in known:
                raise ValueError(f"{type(self).__name__} got invalid argument: {key}")
        values = {name: default(spec) for name, spec in known.items()}
        self.args = SimpleNamespace(**{**values, **kwargs})
        self.llm_build_stats = SimpleNamespace(cache_hitted=False, build_steps_info=[])

    def generate_async(self, inputs: list[int], sampling_params: SamplingParams, streaming: bool = False) -> _Stream:
        CALLS.append(("generate_async", {"inputs": inputs, "sampling_params": sampling_params, "streaming": streaming}))
        return _Stream(inputs, sampling_params)

    def generate(self, inputs: list[list[int]], sampling_params: list[SamplingParams], use_tqdm: bool = True) -> list:
        CALLS.append(("generate", {"inputs": inputs, "sampling_params": sampling_params, "use_tqdm": use_tqdm}))
        results = []
        for prompt, params in zip(inputs, sampling_params):
            tokens = _tokens(params)
            outputs = [CompletionOutput(i, "x" * len(tokens), list(tokens), "length") for i in range(params.n)]
            results.append(RequestOutput(prompt, outputs, finished=True))
        return results

    def shutdown(self) -> None:
        CALLS.append(("shutdown", {}))


class TrtLLM(LLM):
    """``tensorrt_llm._tensorrt_engine.LLM``: builds (or loads) a TensorRT engine (TrtLlmArgs)."""

    args_class = "TrtLlmArgs"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        shape = {name: default(spec) for name, spec in fields("BuildConfig").items()}
        shape.update({k: v for k, v in kwargs.items() if k in shape and v is not None})
        self.args.build_config = SimpleNamespace(**shape)

    def save(self, engine_dir: str) -> None:
        CALLS.append(("save", {"engine_dir": engine_dir}))
        folder = Path(engine_dir)
        folder.mkdir(parents=True)
        config = {"version": __version__, "pretrained_config": {}, "build_config": vars(self.args.build_config)}
        (folder / "config.json").write_text(json.dumps(config))


def calls(name: str) -> list[dict[str, Any]]:
    """The arguments of every recorded call of ``name``."""
    return [kwargs for called, kwargs in CALLS if called == name]


def install(monkeypatch: Any) -> Any:
    """Put the fake in place of ``tensorrt_llm`` (and its ``llmapi`` and ``_tensorrt_engine``) for one test."""
    from tests.fakes.tensorrt_llm import _tensorrt_engine, llmapi

    package = sys.modules[__name__]
    monkeypatch.setitem(sys.modules, "tensorrt_llm", package)
    monkeypatch.setitem(sys.modules, "tensorrt_llm.llmapi", llmapi)
    monkeypatch.setitem(sys.modules, "tensorrt_llm._tensorrt_engine", _tensorrt_engine)
    monkeypatch.setattr(package, "llmapi", llmapi, raising=False)
    monkeypatch.setattr(package, "_tensorrt_engine", _tensorrt_engine, raising=False)
    monkeypatch.setattr(package, "SCRIPT", None)
    CALLS.clear()
    return package
