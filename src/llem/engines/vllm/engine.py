"""The vLLM engine: offline ``vllm.LLM``, every prompt handed over at once, timed per decoding step.

Requests go straight to ``LLM.llm_engine`` with ``RequestOutputKind.DELTA``, and llem steps the
engine itself (as ``LLM.generate`` does inside), so each step's new tokens get a timestamp: TTFT and
ITL per request without streaming. Beam search runs through ``LLM.beam_search`` (no per-token times).
"""

from __future__ import annotations

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
from llem.engines.transformers.loading import load_tokenizer
from llem.engines.vllm import args, runtime
from llem.engines.vllm.capabilities import CPU, CUDA, device_issues
from llem.errors import ConfigError, EngineUnavailableError, ModelUnavailableError
from llem.models import resolve_model
from llem.progress import Progress

log = logging.getLogger("llem.engines.vllm")


@dataclass
class _Completion:
    """One output sequence as the engine's steps deliver it (``RequestOutputKind.DELTA``)."""

    tokens: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # seconds from arrival, one per token
    pieces: list[str] = field(default_factory=list)

    def add(self, part: Any, at_s: float) -> None:
        """A step's new tokens, at ``at_s``; several in one step (speculative decoding) share its span evenly."""
        new = list(part.token_ids)
        before = self.times[-1] if self.times else 0.0
        self.tokens += new
        self.times += [before + (at_s - before) * (i + 1) / len(new) for i in range(len(new))]
        self.pieces.append(part.text)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class VllmEngine:
    """Runs one experiment's model with vLLM; see :class:`llem.engines.base.InferenceEngine`."""

    name = "vllm"

    def __init__(self, cfg: ExperimentConfig) -> None:
        self.cfg = cfg
        self.beam = args.sections(cfg)[2] is not None
        self._llm: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"
        self._dtype = DType.bfloat16
        self._env: dict[str, str] = {}
        self._kwargs: dict[str, Any] = {}
        self._chat_template = False
        self._eos: set[int] = set()
        self._next_id = 0
        self._lora: Any = None
        self._sampling_passthrough: dict[str, Any] = {}  # passthrough_kwargs for SamplingParams, set by load

    # -- loading ------------------------------------------------------------------------------

    def load(self) -> LoadInfo:
        start = time.perf_counter()
        path = resolve_model(self.cfg.model)
        self._device = runtime.device()
        table = CUDA if self._device == "cuda" else CPU
        self._dtype = self.cfg.dtype or runtime.default_dtype(self._device)
        problems = device_issues(self.cfg, table, self._dtype, runtime.head_size(path))
        if problems:
            raise ConfigError("this experiment cannot run here:\n  - " + "\n  - ".join(problems))
        self._env = runtime.set_environment(self._device)
        self._tokenizer = load_tokenizer(path)
        self._chat_template = applies_chat_template(self.cfg.dataset, self._tokenizer)
        self._eos = eos_ids(path, self._tokenizer)
        vllm = runtime.import_vllm()
        self._kwargs = args.engine_kwargs(self.cfg, path, self._dtype, self._device)
        engine_passthrough, self._sampling_passthrough = self._split_passthrough()
        self._kwargs.update(engine_passthrough)
        try:
            self._llm = vllm.LLM(**self._kwargs)
        except (ValueError, TypeError) as err:  # vLLM's argument and config validation
            raise ConfigError(f"vLLM rejected the configuration: {err}") from err
        except OSError as err:
            raise ModelUnavailableError(f"vLLM cannot load model '{path}': {err}") from err
        except RuntimeError as err:  # its EngineCore process failed to start (memory, kernels, ...)
            raise EngineUnavailableError(
                f"vLLM could not start: {err}; the engine's own messages are in the job's worker.log"
            ) from err
        if self.cfg.lora is not None:
            self._lora = runtime.lora_request(self.cfg.lora)
        return LoadInfo(
            model_path=path,
            load_time_s=time.perf_counter() - start,
            device=self._device,
            n_parameters=parameter_count(path),
        )

    def _split_passthrough(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``passthrough_kwargs`` as ``(EngineArgs fields, the other SamplingParams fields)``. A key vLLM
        does not know, or one llem sets itself, is a ConfigError."""
        return split_passthrough(
            self.cfg.passthrough_kwargs or {},
            runtime.engine_arg_names(),
            runtime.sampling_param_names(),
            args.LLEM_SET_KEYS,
            unknown_hint="neither an EngineArgs nor a SamplingParams field of vLLM "
            + runtime.import_vllm().__version__,
            llem_set_hint="random_seed, dtype, decoder.*, vllm.*",
        )

    def tokenizer(self) -> Any:
        return self._tokenizer

    # -- generation ---------------------------------------------------------------------------

    def generate(self, prompts: list[Prompt], progress: Progress | None = None) -> EngineRun:
        """Hand every prompt to the engine at once (their common arrival), then step it to the end.

        ``progress`` hears after each engine step (which returns once the step's tokens are on the host;
        llem already timestamps it) of the requests finished and the tokens delivered so far; beam search
        reports once per group of prompts with the same output length.
        """
        arrival = time.monotonic()
        ids = encode_prompts(self._tokenizer, prompts, self.cfg.max_input_tokens, self._chat_template)
        if self.beam:
            return self._beam_search(prompts, ids, arrival, progress)
        budgets = self._add_requests(prompts, ids)
        engine = self._llm.llm_engine
        completions: dict[str, dict[int, _Completion]] = {rid: {} for rid in budgets}
        finished: dict[str, Any] = {}
        tracker = BudgetTracker(progress, budgets) if progress is not None else None
        steps = 0
        while engine.has_unfinished_requests():
            outputs = engine.step()
            steps += 1
            received = time.monotonic()
            for out in outputs:
                # the engine core's own time for this step (same monotonic clock), else when it reached us
                stamp = getattr(out.metrics, "last_token_ts", 0.0) or received
                for part in out.outputs:
                    completions[out.request_id].setdefault(part.index, _Completion()).add(part, stamp - arrival)
                if out.finished:
                    finished[out.request_id] = out
                if tracker is not None:
                    tracker.add(out.request_id, sum(len(part.token_ids) for part in out.outputs), out.finished)
            if tracker is not None:
                tracker.report()
        run = EngineRun(requests=[], batches=[])
        run.batches.append(BatchRecord(len(ids), max(map(len, ids), default=0), steps, time.monotonic() - arrival))
        for rid, prompt_ids in zip(budgets, ids):
            self._record(run, prompt_ids, completions[rid], finished.get(rid), arrival)
        return run

    def _add_requests(self, prompts: list[Prompt], ids: list[list[int]]) -> dict[str, int | None]:
        """Add one request per prompt (``RequestOutputKind.DELTA``: each step's new tokens); each one's id,
        in prompt order, to its most tokens (:func:`~llem.engines.common.token_budget`).

        A request vLLM refuses (e.g. a prompt longer than the context) aborts those already added and
        is a ConfigError naming the fix.
        """
        from vllm import SamplingParams, TokensPrompt
        from vllm.exceptions import VLLMValidationError
        from vllm.sampling_params import RequestOutputKind

        engine = self._llm.llm_engine
        budgets: dict[str, int | None] = {}
        try:
            inputs = self._llm.renderer.render_cmpl([TokensPrompt(prompt_token_ids=p) for p in ids])
            for prompt, engine_input in zip(prompts, inputs):
                kwargs = {**args.sampling_kwargs(self.cfg, prompt.max_new_tokens), **self._sampling_passthrough}
                params = SamplingParams(**kwargs, output_kind=RequestOutputKind.DELTA)
                request_id = str(self._next_id)
                self._next_id += 1
                engine.add_request(request_id, engine_input, params, lora_request=self._lora)
                budgets[request_id] = token_budget(params)
        except (VLLMValidationError, ValueError) as err:  # vLLM's request validation
            if budgets:
                engine.abort_request(list(budgets), internal=True)
            raise ConfigError(
                f"vLLM refused a request: {err}. Lower max_input_tokens or max_output_tokens, or raise "
                "vllm.engine.max_model_len"
            ) from err
        return budgets

    def _record(
        self, run: EngineRun, prompt_ids: list[int], completions: dict[int, _Completion], final: Any, arrival: float
    ) -> None:
        """One request's record, its completions summed (``vllm.sampling.n`` > 1)."""
        n_out, eos, itl, first = fold_streamed(completions.values(), self._eos)
        by_eos = bool(completions) and all(eos)
        run.texts += [c.text for c in completions.values()]
        metrics = getattr(final, "metrics", None)
        queue = metrics.scheduled_ts - arrival if metrics is not None and metrics.scheduled_ts else None
        run.requests.append(
            RequestRecord(
                input_tokens=len(prompt_ids),
                output_tokens=n_out,
                ttft_s=first,
                itl_s=itl,
                finished_by_eos=by_eos,
                queue_s=queue,
                completions=len(completions),
            )
        )

    def _beam_search(
        self, prompts: list[Prompt], ids: list[list[int]], arrival: float, progress: Progress | None
    ) -> EngineRun:
        """``LLM.beam_search``: exact token counts of the best beam; no per-token times exist here, and
        progress only after each group of prompts with the same output length (one call to vLLM)."""
        from vllm import TokensPrompt
        from vllm.sampling_params import BeamSearchParams

        run = EngineRun(requests=[], batches=[])
        groups: dict[int | None, list[int]] = {}
        for i, prompt in enumerate(prompts):
            groups.setdefault(prompt.max_new_tokens, []).append(i)
        results: dict[int, Any] = {}
        for forced, members in groups.items():
            params = BeamSearchParams(**args.beam_search_kwargs(self.cfg, forced, self._room(ids)))
            outputs = self._llm.beam_search(
                [TokensPrompt(prompt_token_ids=ids[i]) for i in members], params, lora_request=self._lora
            )
            results.update(zip(members, outputs))
            if progress is not None:
                progress.update(len(results))
        for i, prompt_ids in enumerate(ids):
            generated = results[i].sequences[0].tokens[len(prompt_ids) :]  # the best beam holds the prompt too
            count, eos = count_generated(generated, self._eos)
            run.requests.append(RequestRecord(len(prompt_ids), count, None, [], eos))
            run.texts.append(self._tokenizer.decode(generated[:count], skip_special_tokens=True))
        steps = max((r.output_tokens for r in run.requests), default=0)
        run.batches.append(BatchRecord(len(ids), max(map(len, ids), default=0), steps, time.monotonic() - arrival))
        return run

    def _room(self, ids: list[list[int]]) -> int:
        """Tokens left in the context after the longest prompt."""
        context = self._llm.llm_engine.vllm_config.model_config.max_model_len
        return max(1, context - max(map(len, ids), default=0))

    def synchronize(self) -> None:
        """Nothing to wait for: ``step`` returns once the step's tokens exist on the host."""

    # -- facts for the result -----------------------------------------------------------------

    def effective_config(self) -> dict[str, Any]:
        return {
            **runtime.effective_engine_settings(self._llm),
            "decoding": "beam_search" if self.beam else "sampling_params",
            "sampling_params": None if self.beam else args.sampling_kwargs(self.cfg, None),
            "beam_search_params": args.beam_search_kwargs(self.cfg, None, 0) if self.beam else None,
            "llm_kwargs": {k: sorted(v) if isinstance(v, set) else v for k, v in self._kwargs.items()},
            "environment": self._env,
            "cpu_threads": runtime.cpu_threads() if self._device == "cpu" and runtime.in_process() else None,
            "chat_template": self._chat_template,
            "eos_token_ids": sorted(self._eos),
            "device": self._device,
        }

    def flops(self, run: EngineRun) -> dict[str, Any]:
        """Per request (vLLM pads nothing): its own prefill, then one step per further token, for each
        sample (``vllm.sampling.n`` samples share the average length). Beam search sends every step as
        a new one-token request for each beam, so without prefix caching each step re-runs the sequence."""
        shape = decoder_shape(self._kwargs["model"])
        beams = args.beam_search_kwargs(self.cfg, None, 0)["beam_width"] if self.beam else 1
        per_request = [
            BatchRecord(r.completions, r.input_tokens, r.output_tokens // r.completions, 0.0) for r in run.requests
        ]
        mode = flops.GenerationMode(
            rows_per_prompt=beams,
            use_cache=not self.beam,
            caveats=self._flops_caveats(run),
            speculative=bool(self._kwargs.get("speculative_config")),
        )
        block = flops.estimate(shape, per_request, sum(r.output_tokens for r in run.requests), mode)
        block["scope"] = "matrix multiplications of the measured window, per request (vLLM pads nothing)"
        return block

    def _flops_caveats(self, run: EngineRun) -> tuple[str, ...]:
        """Why vLLM's FLOPs count is not exact for this run."""
        caveats = []
        if self._kwargs.get("enable_prefix_caching"):
            caveats.append("prefix caching: prefill of cached prefixes is skipped by vLLM but counted here")
        if self.beam:
            caveats.append("beam search: every beam is counted for as many steps as the best beam's length")
        if any(r.completions > 1 for r in run.requests):
            caveats.append("vllm.sampling.n > 1: the samples of a request are counted at their average length")
        return tuple(caveats)

    def memory(self) -> dict[str, Any]:
        return runtime.memory_facts(self._llm, self._device)

    def close(self) -> None:
        """Shut the engine down (its EngineCore and worker processes, where it started any)."""
        if self._llm is None:
            return
        try:
            self._llm.llm_engine.engine_core.shutdown()
        except Exception as err:  # shutdown is best effort; the worker's process group ends the rest
            log.warning("vLLM shutdown: %s", err)
        self._llm = None
        gc.collect()
        if self._device == "cuda":
            import torch

            torch.cuda.empty_cache()
