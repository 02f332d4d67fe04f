"""The TensorRT-LLM engine: TensorRT-LLM 1.2's ``LLM`` (the PyTorch backend, or a TensorRT engine built
once and cached), every prompt handed over at once, each request streamed so that every step's tokens
get a timestamp: TTFT and ITL per request. Beam search runs without streaming (no per-token times)."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from llem import flops
from llem.config.schema import DType, ExperimentConfig
from llem.datasets import Prompt
from llem.engines.base import BatchRecord, EngineRun, LoadInfo, RequestRecord
from llem.engines.common import (
    BudgetTracker,
    count_generated,
    decoder_shape,
    eos_ids,
    fold_streamed,
    parameter_count,
    split_passthrough,
    token_budget,
)
from llem.engines.prompts import applies_chat_template, encode_prompts
from llem.engines.tensorrt import args, capabilities, runtime
from llem.engines.transformers.loading import load_tokenizer
from llem.errors import ConfigError, EngineUnavailableError, ModelUnavailableError
from llem.models import resolve_model
from llem.progress import Progress

log = logging.getLogger("llem.engines.tensorrt")

# Why the result's CUDA peaks are null for TensorRT-LLM (and where the GPU memory figure is instead).
CUDA_PEAK_NOTE = (
    "not measured: TensorRT-LLM runs the model in its executor's worker processes, whose CUDA peaks llem's "
    "process cannot read; the whole GPU's memory in use is in the telemetry's memory_used_mb (NVML)"
)


@dataclass
class _Completion:
    """One output sequence as its streamed steps deliver it."""

    tokens: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # seconds from arrival, one per token
    text: str = ""
    finish_reason: str | None = None

    def add(self, new: list[int], at_s: float) -> None:
        """A step's new tokens, at ``at_s``; several in one step (speculative decoding) share its span evenly."""
        before = self.times[-1] if self.times else 0.0
        self.tokens += new
        self.times += [before + (at_s - before) * (i + 1) / len(new) for i in range(len(new))]


@dataclass
class EngineBuild:
    """How the LLM came to run: built, a cached engine reused, a given engine folder, or no engine."""

    backend: str  # pytorch | trt
    cache: str  # built | reused | given | none (the PyTorch backend builds no engine)
    seconds: float = 0.0  # the LLM constructor: engine build or engine load, and the runtime's start
    cache_key: str | None = None
    engine_dir: str | None = None  # the cached engine folder


class TensorRTEngine:
    """Runs one experiment's model with TensorRT-LLM; see :class:`llem.engines.base.InferenceEngine`."""

    name = "tensorrt"

    def __init__(self, cfg: ExperimentConfig) -> None:
        self.cfg = cfg
        self.table = capabilities.table(cfg.tensorrt)
        self.beam = capabilities.beam_width(cfg.tensorrt) > 1
        self._llm: Any = None
        self._tokenizer: Any = None
        self._path = ""
        self._kwargs: dict[str, Any] = {}
        self._build = EngineBuild(self.table.backend.value, "none")
        self._chat_template = False
        self._eos: set[int] = set()
        self._room_tokens = 0  # the last run's cap on output tokens when max_output_tokens is unset
        self._sampling_passthrough: dict[str, Any] = {}  # passthrough_kwargs for SamplingParams, set by load

    # -- loading ------------------------------------------------------------------------------

    def load(self) -> LoadInfo:
        start = time.perf_counter()
        self._path = path = resolve_model(self.cfg.model)
        self._engine_folder_needs_trt()
        count, capability, gpu_name = runtime.gpus()
        dtype = self._dtype(capability)
        problems = capabilities.device_issues(self.cfg, dtype, capability, count)
        if problems:
            raise ConfigError("this experiment cannot run here:\n  - " + "\n  - ".join(problems))
        tllm = runtime.import_tensorrt_llm()
        self._tokenizer = load_tokenizer(path)
        self._chat_template = applies_chat_template(self.cfg.dataset, self._tokenizer)
        self._eos = eos_ids(path, self._tokenizer)
        llm_passthrough, self._sampling_passthrough = self._split_passthrough()
        self._kwargs = {**args.llm_kwargs(self.cfg, path, dtype), **llm_passthrough}
        self._use_engine_cache(tllm.__version__, gpu_name)
        built = time.perf_counter()
        self._llm = self._start()
        self._build.seconds = time.perf_counter() - built
        if self._build.cache == "built":
            runtime.save_engine(self._llm, runtime.engine_cache_dir(self._build.cache_key or ""))
        log.info("TensorRT-LLM %s: engine %s in %.1f s", self._build.backend, self._build.cache, self._build.seconds)
        return LoadInfo(
            model_path=path,
            load_time_s=time.perf_counter() - start,
            device="cuda",
            n_parameters=parameter_count(path) or 0,
        )

    def _engine_folder_needs_trt(self) -> None:
        """A built engine folder as the model runs on the TensorRT path: chosen when ``tensorrt.engine`` is
        unset, a ConfigError when it says ``pytorch``."""
        if self.table.builds_engine or not runtime.is_engine_folder(self._path):
            return
        if self.cfg.tensorrt is not None and self.cfg.tensorrt.engine is not None:
            raise ConfigError(
                f"model: {self._path} is a built TensorRT engine, which tensorrt.engine=pytorch cannot run: "
                "set tensorrt.engine=trt, or give the Hugging Face model"
            )
        self.table = capabilities.TRT
        self._build.backend = self.table.backend.value

    def _dtype(self, capability: tuple[int, int]) -> DType:
        """``dtype``, else ``tensorrt.dtype``, else bfloat16 where the GPU has it (compute capability 8.0), else
        float16."""
        section = self.cfg.tensorrt.dtype if self.cfg.tensorrt else None
        if self.cfg.dtype or section:
            return self.cfg.dtype or DType(section.value)
        return DType.bfloat16 if capability >= (8, 0) else DType.float16

    def _use_engine_cache(self, version: str, gpu_name: str) -> None:
        """On the TensorRT path: a built engine folder given as the model is used as it is; else an engine
        cached for (model, build options, TensorRT-LLM version, GPU model) replaces the model."""
        if not self.table.builds_engine:
            return
        if runtime.is_engine_folder(self._path):
            self._build.cache = "given"
            return
        key = runtime.cache_key(self._path, args.build_options(self._kwargs), version, gpu_name)
        folder = runtime.engine_cache_dir(key)
        self._build.cache_key, self._build.engine_dir = key, str(folder)
        if runtime.is_engine_folder(folder):
            self._build.cache = "reused"
            self._kwargs["model"] = str(folder)
        else:
            self._build.cache = "built"

    def _start(self) -> Any:
        """The LLM object: the engine built or loaded and its runtime (and MPI workers) started."""
        cls = runtime.llm_class(self.table.llm_class)
        try:
            return cls(**runtime.api_objects(self._kwargs))
        except (ValueError, TypeError) as err:  # TensorRT-LLM's argument validation (pydantic's is a ValueError)
            raise ConfigError(f"TensorRT-LLM rejected the configuration: {err}") from err
        except OSError as err:
            raise ModelUnavailableError(f"TensorRT-LLM cannot load model '{self._path}': {err}") from err
        except RuntimeError as err:  # engine build or executor start failed (memory, kernels, MPI)
            raise EngineUnavailableError(
                f"TensorRT-LLM could not start: {err}; its own messages are in the job's worker.log"
            ) from err

    def _split_passthrough(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``passthrough_kwargs`` as ``(fields of the LLM's args class, the other SamplingParams
        fields)``. An unknown key, or one llem sets itself, is a ConfigError."""
        return split_passthrough(
            self.cfg.passthrough_kwargs or {},
            runtime.llm_arg_names("TrtLlmArgs" if self.table.builds_engine else "TorchLlmArgs"),
            runtime.sampling_param_names(),
            args.LLEM_SET_KEYS,
            unknown_hint=f"neither an argument of {self.table.llm_class} nor a SamplingParams field of TensorRT-LLM",
            llem_set_hint="dtype, random_seed, decoder.*, tensorrt.*",
        )

    def tokenizer(self) -> Any:
        return self._tokenizer

    # -- generation ---------------------------------------------------------------------------

    def generate(self, prompts: list[Prompt], progress: Progress | None = None) -> EngineRun:
        """Hand every prompt to the engine at once (their common arrival), then follow each to its end.

        ``progress`` hears after each streamed step (already timestamped here) of the requests finished and
        the tokens delivered, with the fraction of the token budget done; beam search reports once, at the end.
        """
        arrival = time.monotonic()
        ids = encode_prompts(self._tokenizer, prompts, self.cfg.max_input_tokens, self._chat_template)
        self._room_tokens = self._room(ids)
        params = [self._sampling_params(p.max_new_tokens, self._room_tokens) for p in prompts]
        if self.beam:
            return self._beam_search(ids, params, arrival, progress)
        streamed = asyncio.run(self._stream(ids, params, arrival, progress))
        run = EngineRun(requests=[], batches=[])
        steps = max((len(c.tokens) for completions in streamed for c in completions.values()), default=0)
        run.batches.append(BatchRecord(len(ids), max(map(len, ids), default=0), steps, time.monotonic() - arrival))
        for prompt_ids, completions in zip(ids, streamed):
            self._record(run, prompt_ids, completions)
        return run

    def _sampling_params(self, forced: int | None, room: int) -> Any:
        from tensorrt_llm import SamplingParams

        kwargs = {**args.sampling_kwargs(self.cfg, forced, room), **self._sampling_passthrough}
        try:
            return SamplingParams(**kwargs)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"TensorRT-LLM refused the sampling settings: {err}") from err

    async def _stream(
        self, ids: list[list[int]], params: list[Any], arrival: float, progress: Progress | None
    ) -> list[dict[int, _Completion]]:
        """Submit every request (inside this event loop, as streaming needs), then collect each one's steps.

        A request TensorRT-LLM refuses (a prompt plus max_tokens beyond max_seq_len) is a ConfigError naming
        the fix; the run ends, and :meth:`close` shuts the executor down with the requests already submitted."""
        try:
            results = [self._llm.generate_async(p, sampling_params=s, streaming=True) for p, s in zip(ids, params)]
        except ValueError as err:
            raise ConfigError(
                f"TensorRT-LLM refused a request: {err}. Lower max_input_tokens or max_output_tokens, or raise "
                "tensorrt.max_seq_len"
            ) from err
        budgets = {i: token_budget(p) for i, p in enumerate(params)}
        tracker = BudgetTracker(progress, budgets) if progress is not None else None

        async def follow(request: int, result: Any) -> dict[int, _Completion]:
            completions: dict[int, _Completion] = {}
            async for step in result:
                at_s = time.monotonic() - arrival
                delivered = 0
                for part in step.outputs:
                    completion = completions.setdefault(part.index, _Completion())
                    new = list(part.token_ids_diff)
                    if new:
                        completion.add(new, at_s)
                    delivered += len(new)
                    completion.text, completion.finish_reason = part.text, part.finish_reason
                if tracker is not None:
                    tracker.add(request, delivered)
                    tracker.report()
            if tracker is not None:
                tracker.add(request, 0, finished=True)
                tracker.report()
            return completions

        return list(await asyncio.gather(*(follow(i, r) for i, r in enumerate(results))))

    def _record(self, run: EngineRun, prompt_ids: list[int], completions: dict[int, _Completion]) -> None:
        """One request's record, its completions summed (``tensorrt.sampling.n`` > 1)."""
        n_out, eos, itl, first = fold_streamed(completions.values(), self._eos)
        stopped = [e or c.finish_reason == "stop" for e, c in zip(eos, completions.values())]
        by_eos = bool(completions) and all(stopped)
        run.texts += [c.text for c in completions.values()]
        run.requests.append(
            RequestRecord(
                input_tokens=len(prompt_ids),
                output_tokens=n_out,
                ttft_s=first,
                itl_s=itl,
                finished_by_eos=by_eos,
                completions=max(len(completions), 1),
            )
        )

    def _beam_search(
        self, ids: list[list[int]], params: list[Any], arrival: float, progress: Progress | None
    ) -> EngineRun:
        """All requests at once without streaming: exact token counts of the best beam, no per-token times;
        ``progress`` hears once, after the call returns."""
        try:
            outputs = self._llm.generate(ids, sampling_params=params, use_tqdm=False)
        except ValueError as err:
            raise ConfigError(f"TensorRT-LLM refused a request: {err}") from err
        run = EngineRun(requests=[], batches=[])
        for prompt_ids, output in zip(ids, outputs):
            best = output.outputs[0]
            count, eos = count_generated(list(best.token_ids), self._eos)
            run.requests.append(RequestRecord(len(prompt_ids), count, None, [], eos or best.finish_reason == "stop"))
            run.texts.append(best.text)
        if progress is not None:
            progress.update(len(run.requests), sum(r.output_tokens for r in run.requests))
        steps = max((r.output_tokens for r in run.requests), default=0)
        run.batches.append(BatchRecord(len(ids), max(map(len, ids), default=0), steps, time.monotonic() - arrival))
        return run

    def _room(self, ids: list[list[int]]) -> int:
        """Tokens left in the context after the longest prompt (the cap when max_output_tokens is unset)."""
        context = runtime.context_length(self._llm, self._path) or 2048
        return max(1, context - max(map(len, ids), default=0))

    def synchronize(self) -> None:
        """Nothing to wait for: a step's tokens reach llem once they exist on the host."""

    # -- facts for the result -----------------------------------------------------------------

    def effective_config(self) -> dict[str, Any]:
        return {
            **runtime.effective_settings(self._llm, self.table.builds_engine),
            "backend": self.table.backend.value,
            "llm_class": self.table.llm_class,
            "engine_build": vars(self._build),
            "decoding": "beam_search" if self.beam else "streamed",
            "sampling_params": args.sampling_kwargs(self.cfg, None, self._room_tokens),
            "llm_kwargs": self._kwargs,
            "chat_template": self._chat_template,
            "eos_token_ids": sorted(self._eos),
            "device": "cuda",
        }

    def flops(self, run: EngineRun) -> dict[str, Any]:
        """Per request (TensorRT-LLM pads nothing in flight): its own prefill, then one step per further
        token, for each returned sequence; beam search counts every beam for the best beam's length. A built
        engine folder given as the model has no Hugging Face config to read its shapes from: not estimated."""
        if self._build.cache == "given":
            return {
                "total": None,
                "per_output_token": None,
                "method": "not estimated: the model is a built TensorRT engine folder, without its Hugging Face config",
                "confidence": "none",
            }
        shape = decoder_shape(self._path)
        beams = capabilities.beam_width(self.cfg.tensorrt)
        per_request = [
            BatchRecord(r.completions, r.input_tokens, r.output_tokens // r.completions, 0.0) for r in run.requests
        ]
        beam_caveat = "beam search: every beam is counted for as many steps as the best beam's length"
        caveats = (beam_caveat,) if self.beam else ()
        mode = flops.GenerationMode(rows_per_prompt=beams, use_cache=True, caveats=caveats, speculative=False)
        block = flops.estimate(shape, per_request, sum(r.output_tokens for r in run.requests), mode)
        block["scope"] = "matrix multiplications of the measured window, per request (in-flight batching pads nothing)"
        return block

    def memory(self) -> dict[str, Any]:
        """The KV cache as configured, and no CUDA peak: TensorRT-LLM runs the model in its executor's worker
        processes, whose allocations torch in this process does not see (its peak here would be near zero,
        not the model's). The GPU's memory in use is in the telemetry's ``memory_used_mb`` (NVML)."""
        kv = runtime.effective_settings(self._llm, False)["kv_cache_config"] if self._llm is not None else None
        return {
            "kv_cache_config": kv,
            "cuda_peak_allocated_mb": None,
            "cuda_peak_reserved_mb": None,
            "cuda_peak_note": CUDA_PEAK_NOTE,
        }

    def close(self) -> None:
        """Shut the executor and its MPI worker processes down, then free the GPU memory of this process."""
        if self._llm is None:
            return
        try:
            self._llm.shutdown()
        except Exception as err:  # best effort; the worker's process group ends what is left
            log.warning("TensorRT-LLM shutdown: %s", err)
        self._llm = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
