"""The Hugging Face Transformers engine: batched ``model.generate`` with left padding."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from llem import flops
from llem.config.schema import ExperimentConfig, TransformersConfig
from llem.datasets import Prompt
from llem.engines.base import BatchRecord, EngineRun, LoadInfo
from llem.engines.prompts import applies_chat_template, encode_prompts
from llem.engines.transformers import generation, loading
from llem.models import resolve_model
from llem.progress import Progress


class TransformersEngine:
    """Runs one experiment's model with ``transformers``; see :class:`InferenceEngine`."""

    name = "transformers"

    def __init__(self, cfg: ExperimentConfig) -> None:
        self.cfg = cfg
        self.section = cfg.transformers or TransformersConfig()
        self.batch_size = self.section.batch_size or 1
        self._gen_passthrough, self._load_passthrough = loading.split_passthrough(cfg.passthrough_kwargs)
        self._model: Any = None
        self._tokenizer: Any = None
        self._device = "cpu"
        self._eos: set[int] = set()
        self._timer: generation.StepTimer | None = None

    # -- loading ------------------------------------------------------------------------------

    def load(self) -> LoadInfo:
        import torch

        start = time.perf_counter()
        path = resolve_model(self.cfg.model)
        self._device = loading.choose_device(self.section)
        loading.check_device_options(self.section, self._device)
        if self._device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            if self.section.allow_tf32 is not None:
                torch.backends.cuda.matmul.allow_tf32 = self.section.allow_tf32
                torch.backends.cudnn.allow_tf32 = self.section.allow_tf32
        self._tokenizer = loading.load_tokenizer(path)
        self._chat_template = applies_chat_template(self.cfg.dataset, self._tokenizer)
        kwargs = loading.model_kwargs(self.cfg, self._device, self._load_passthrough)
        model = loading.load_model(path, kwargs, self._device)
        model = loading.apply_lora(model, self.cfg)
        loading.compile_model(model, self.section)
        self._model = model
        self._eos = generation.eos_token_ids(model.generation_config, self._tokenizer, self._gen_passthrough)
        self._timer = generation.StepTimer(self.synchronize)
        self._load_kwargs = kwargs
        return LoadInfo(
            model_path=path,
            load_time_s=time.perf_counter() - start,
            device=str(next(model.parameters()).device),
            n_parameters=sum(p.numel() for p in model.parameters()),
        )

    def tokenizer(self) -> Any:
        return self._tokenizer

    # -- generation ---------------------------------------------------------------------------

    def generate(self, prompts: list[Prompt], progress: Progress | None = None) -> EngineRun:
        """Every prompt arrives now; the batches run one after the other (later ones queue).

        ``progress`` hears of each decoding step (from the step timer, which already synchronises and
        timestamps it) and of each finished batch, with the batch's exact output tokens.
        """
        arrival = time.perf_counter()
        run = EngineRun(requests=[], batches=[])
        batches = -(-len(prompts) // self.batch_size)
        tokens = 0
        for index, first in enumerate(range(0, len(prompts), self.batch_size)):
            batch = prompts[first : first + self.batch_size]
            on_step = None
            if progress is not None:
                on_step = _step_reporter(progress, first, len(batch), len(prompts), (index + 1, batches), tokens)
            self._generate_batch(batch, run, arrival, on_step)
            if progress is not None:
                tokens += sum(r.output_tokens for r in run.requests[first:])
                progress.update(len(run.requests), tokens, batch=(index + 1, batches))
        return run

    def _max_new_tokens(self, prompt: Prompt, input_len: int) -> int:
        if prompt.max_new_tokens is not None:
            return prompt.max_new_tokens
        if self.cfg.max_output_tokens is not None:
            return self.cfg.max_output_tokens
        return max(1, self._context_length() - input_len)

    def _context_length(self) -> int:
        cfg = self._model.config
        return int(getattr(cfg, "max_position_embeddings", 0) or self._tokenizer.model_max_length)

    def _generate_batch(
        self, batch: list[Prompt], run: EngineRun, arrival: float, on_step: StepReporter | None = None
    ) -> None:
        import torch

        ids = encode_prompts(self._tokenizer, batch, self.cfg.max_input_tokens, self._chat_template)
        enc = self._tokenizer.pad({"input_ids": ids}, return_tensors="pt", padding=True).to(self._model.device)
        padded = int(enc["input_ids"].shape[1])
        new_tokens = max(self._max_new_tokens(p, padded) for p in batch)
        kwargs = generation.generation_kwargs(self.cfg, self._gen_passthrough)
        kwargs["max_new_tokens"] = new_tokens
        if batch[0].max_new_tokens is not None:  # synthetic prompts: exact output length
            kwargs["min_new_tokens"] = new_tokens
        timer = self._timer
        assert timer is not None
        timer.reset(None if on_step is None else lambda length: on_step(length - padded, new_tokens))
        with torch.inference_mode(), self._autocast():
            out = self._model.generate(
                **enc,
                **kwargs,
                pad_token_id=self._tokenizer.pad_token_id,
                stopping_criteria=[timer],
            )
        self.synchronize()
        wall = time.perf_counter() - timer.start
        input_lens = [int(n) for n in enc["attention_mask"].sum(dim=1).tolist()]
        generated = out[:, padded:]
        queued = timer.start - arrival
        run.requests += generation.request_records(generated, input_lens, padded, timer.marks, self._eos, queued)
        lengths = [length for _, length in timer.marks]
        cache_len = flops.static_cache_len(self._model, kwargs, padded + new_tokens)
        run.batches.append(BatchRecord(len(batch), padded, len(timer.marks), wall, lengths, cache_len))
        run.texts += self._tokenizer.batch_decode(generated, skip_special_tokens=True)

    def _autocast(self) -> Any:
        if not self.section.autocast_enabled:
            return contextlib.nullcontext()
        import torch

        chosen = self.section.autocast_dtype
        dtype = loading.torch_dtype(chosen.value) if chosen else self._load_kwargs["dtype"]
        return torch.autocast(device_type=self._device, dtype=dtype)

    def synchronize(self) -> None:
        if self._device == "cuda":
            import torch

            torch.cuda.synchronize()

    # -- facts for the result -----------------------------------------------------------------

    def effective_config(self) -> dict[str, Any]:
        s = self.section
        model = self._model
        gen = generation.generation_kwargs(self.cfg, self._gen_passthrough)
        return {
            "batch_size": self.batch_size,
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "torch_compile": bool(s.torch_compile),
            "torch_compile_mode": (s.torch_compile_mode or "default") if s.torch_compile else None,
            "torch_compile_backend": (s.torch_compile_backend or "inductor") if s.torch_compile else None,
            "load_in_4bit": bool(s.load_in_4bit),
            "load_in_8bit": bool(s.load_in_8bit),
            "use_cache": gen["use_cache"],
            "cache_implementation": gen.get("cache_implementation", "dynamic"),
            "num_beams": gen["num_beams"],
            "early_stopping": gen.get("early_stopping"),
            "length_penalty": gen.get("length_penalty"),
            "no_repeat_ngram_size": gen.get("no_repeat_ngram_size", 0),
            "prompt_lookup_num_tokens": gen.get("prompt_lookup_num_tokens"),
            "device_map": self._load_kwargs.get("device_map", self._device),
            "device": str(next(model.parameters()).device),
            "low_cpu_mem_usage": self._load_kwargs["low_cpu_mem_usage"],
            "allow_tf32": _tf32_state() if self._device == "cuda" else None,
            "autocast_enabled": bool(s.autocast_enabled),
            "autocast_dtype": (s.autocast_dtype.value if s.autocast_dtype else _dtype_name(self._load_kwargs["dtype"]))
            if s.autocast_enabled
            else None,
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "generate_kwargs": {k: v for k, v in gen.items() if v is not None},
            "eos_token_ids": sorted(self._eos),
            "pad_token_id": self._tokenizer.pad_token_id,
            "passthrough_to_generate": sorted(self._gen_passthrough),
            "passthrough_to_from_pretrained": sorted(self._load_passthrough),
            "context_length": self._context_length(),
            "chat_template": self._chat_template,
        }

    def flops(self, run: EngineRun) -> dict[str, Any]:
        shape = flops.decoder_shape(self._model)
        mode = flops.GenerationMode.from_generate_kwargs(generation.generation_kwargs(self.cfg, self._gen_passthrough))
        return flops.estimate(shape, run.batches, sum(r.output_tokens for r in run.requests), mode)

    def memory(self) -> dict[str, Any]:
        if self._device != "cuda":
            return {}
        import torch

        return {
            "cuda_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20,
            "cuda_peak_reserved_mb": torch.cuda.max_memory_reserved() / 2**20,
        }

    def close(self) -> None:
        self._model = None
        if self._device == "cuda":
            import torch

            torch.cuda.empty_cache()


# Called after each decoding step with (tokens generated so far per row, the batch's step budget).
StepReporter = Callable[[int, int], None]


def _step_reporter(
    progress: Progress, done: int, size: int, total: int, batch: tuple[int, int], tokens: int
) -> StepReporter:
    """Tells ``progress`` how far the batch of ``size`` prompts after the first ``done`` has got."""

    def report(generated: int, budget: int) -> None:
        fraction = (done + size * min(generated, budget) / budget) / total
        progress.update(done, tokens, fraction=fraction, batch=batch, step=(generated, budget))

    return report


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _tf32_state() -> bool:
    import torch

    return bool(torch.backends.cuda.matmul.allow_tf32)
