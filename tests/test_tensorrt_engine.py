"""The TensorRT-LLM engine on the recording fake of tensorrt_llm (tests/fakes/tensorrt_llm) and the tiny
built-in model's tokenizer: which LLM class gets which arguments, the engine cache, token counts and
per-request times from the streamed steps, settings read back, refusals before load, and shutdown.
The fake streams fixed tokens: these tests check llem's bookkeeping, not TensorRT-LLM's numbers."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from llem.config.load import load_experiment
from llem.datasets import Prompt
from llem.engines.tensorrt import runtime
from llem.engines.tensorrt.engine import TensorRTEngine
from llem.errors import ConfigError, EngineUnavailableError
from tests.fakes import tensorrt_llm as fake

PROMPTS = [Prompt(text="Describe the water cycle."), Prompt(text="Hello"), Prompt(text="Name three primes.")]
FORCED = 6


@pytest.fixture
def tllm(monkeypatch, tiny_model_path):
    """The fake in place of tensorrt_llm, and one fake GPU of compute capability 9.0."""
    monkeypatch.setattr(runtime, "gpus", lambda: (1, (9, 0), "Fake GPU"))
    return fake.install(monkeypatch)


def engine_for(model: str, **fields) -> TensorRTEngine:
    data = {"model": model, "engine": "tensorrt", "dtype": "float16", "max_output_tokens": 10, **fields}
    eng = TensorRTEngine(load_experiment({"decoder": {"preset": "deterministic"}, **data}))
    eng.load()
    return eng


def forced(n: int = FORCED) -> list[Prompt]:
    return [dataclasses.replace(p, max_new_tokens=n) for p in PROMPTS]


def test_pytorch_backend_gets_the_torch_llm_and_its_config_objects(tllm, tiny_model_path):
    eng = engine_for(tiny_model_path, tensorrt={"kv_cache": {"free_gpu_memory_fraction": 0.5}})
    ((name, kwargs),) = [c for c in tllm.CALLS if c[0].endswith("__init__")]
    assert name == "LLM.__init__"  # tensorrt_llm.LLM, the PyTorch backend
    assert kwargs["kv_cache_config"].given == {"enable_block_reuse": False, "free_gpu_memory_fraction": 0.5}
    assert kwargs["model"] == kwargs["tokenizer"] == tiny_model_path
    assert eng.effective_config()["engine_build"]["cache"] == "none"


def test_trt_backend_builds_once_then_reuses_the_cached_engine(tllm, tiny_model_path):
    trt = {"engine": "trt", "max_batch_size": 4, "quant": {"quant_algo": "W8A16"}}
    first = engine_for(tiny_model_path, tensorrt=trt)
    (init,) = tllm.calls("TrtLLM.__init__")
    assert init["quant_config"].quant_algo == "W8A16" and init["max_batch_size"] == 4
    built = first.effective_config()["engine_build"]
    assert built["cache"] == "built" and tllm.calls("save") == [{"engine_dir": tllm.calls("save")[0]["engine_dir"]}]
    assert runtime.is_engine_folder(built["engine_dir"])
    first.close()

    second = engine_for(tiny_model_path, tensorrt=trt)
    reused = second.effective_config()["engine_build"]
    assert reused["cache"] == "reused" and reused["cache_key"] == built["cache_key"]
    assert tllm.calls("TrtLLM.__init__")[1]["model"] == built["engine_dir"]
    assert tllm.calls("TrtLLM.__init__")[1]["tokenizer"] == tiny_model_path
    assert len(tllm.calls("save")) == 1

    other = engine_for(tiny_model_path, tensorrt={**trt, "max_batch_size": 8})
    assert other.effective_config()["engine_build"]["cache"] == "built"  # another build option: another engine


def test_a_built_engine_folder_given_as_the_model_is_used_as_is(tllm, tiny_model_path, tmp_path):
    first = engine_for(tiny_model_path, tensorrt={"engine": "trt"})
    folder = first.effective_config()["engine_build"]["engine_dir"]
    for source in Path(tiny_model_path).iterdir():  # the tokenizer beside the engine, as a user would keep it
        if source.name.startswith(("tokenizer", "special_tokens", "generation_config")):
            shutil.copy(source, folder)
    given = engine_for(folder)  # tensorrt.engine unset: the TensorRT path, the only one that runs an engine
    assert given.effective_config()["engine_build"]["cache"] == "given"
    assert tllm.calls("TrtLLM.__init__")[-1]["model"] == folder
    assert given.flops(given.generate(forced()))["confidence"] == "none"
    with pytest.raises(ConfigError, match="is a built TensorRT engine, which tensorrt.engine=pytorch cannot run"):
        engine_for(folder, tensorrt={"engine": "pytorch"})


def test_forced_lengths_give_exact_counts_and_per_request_times(tllm, tiny_model_path):
    eng = engine_for(tiny_model_path)
    run = eng.generate(forced())
    assert [r.output_tokens for r in run.requests] == [FORCED] * len(PROMPTS)
    tok = eng.tokenizer()
    assert [r.input_tokens for r in run.requests] == [len(tok(p.text)["input_ids"]) for p in PROMPTS]
    for r in run.requests:
        assert r.ttft_s is not None and r.ttft_s >= 0
        assert len(r.itl_s) == FORCED - 1 and all(gap >= 0 for gap in r.itl_s)
    (batch,) = run.batches
    assert (batch.size, batch.forward_passes) == (len(PROMPTS), FORCED)
    params = [c["sampling_params"] for c in tllm.calls("generate_async")]
    assert all(p.max_tokens == p.min_tokens == FORCED and p.top_k == 1 for p in params)
    assert all(c["streaming"] for c in tllm.calls("generate_async"))


def test_an_eos_ends_the_count(tllm, tiny_model_path):
    eng = engine_for(tiny_model_path)
    eos = sorted(eng.effective_config()["eos_token_ids"])[0]
    tllm.SCRIPT = [5, 6, eos]
    run = eng.generate(PROMPTS)
    assert [(r.output_tokens, r.finished_by_eos) for r in run.requests] == [(3, True)] * len(PROMPTS)


def test_several_sequences_per_prompt_are_summed(tllm, tiny_model_path):
    eng = engine_for(tiny_model_path, decoder={"temperature": 0.8}, tensorrt={"sampling": {"n": 2}})
    run = eng.generate(forced())
    assert [(r.output_tokens, r.completions) for r in run.requests] == [(2 * FORCED, 2)] * len(PROMPTS)
    assert len(run.texts) == 2 * len(PROMPTS)


def test_beam_search_counts_the_best_beam_without_streaming(tllm, tiny_model_path):
    eng = engine_for(tiny_model_path, tensorrt={"sampling": {"use_beam_search": True, "n": 1, "best_of": 3}})
    assert tllm.calls("LLM.__init__")[0]["max_beam_width"] == 3
    run = eng.generate(forced())
    assert [r.output_tokens for r in run.requests] == [FORCED] * len(PROMPTS)
    assert all(r.ttft_s is None and r.itl_s == [] for r in run.requests)
    assert not tllm.calls("generate_async") and tllm.calls("generate")[0]["use_tqdm"] is False
    assert eng.flops(run)["confidence"] == "medium"


class Heard:
    """A stand-in for :class:`llem.progress.Progress` that keeps every update: (done, tokens, fraction)."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, int | None, float | None]] = []

    def update(self, done: int, tokens: int | None = None, fraction: float | None = None, **_: object) -> None:
        self.updates.append((done, tokens, fraction))


def test_progress_moves_with_each_streamed_step_before_any_request_ends(tllm, tiny_model_path):
    heard = Heard()
    engine_for(tiny_model_path).generate(forced(), heard)
    budget = FORCED * len(PROMPTS)
    assert heard.updates[0] == (0, 1, 1 / budget)  # the first step of the first request, equal lengths
    assert heard.updates[-1] == (len(PROMPTS), budget, 1.0)
    fractions = [fraction for _, _, fraction in heard.updates]
    assert fractions == sorted(fractions) and len(set(fractions)) == budget


def test_beam_search_reports_progress_once_it_returns(tllm, tiny_model_path):
    heard = Heard()
    eng = engine_for(tiny_model_path, tensorrt={"sampling": {"use_beam_search": True, "n": 1, "best_of": 3}})
    eng.generate(forced(), heard)
    assert [(done, tokens) for done, tokens, _ in heard.updates] == [(len(PROMPTS), FORCED * len(PROMPTS))]


def test_memory_leaves_the_cuda_peak_null_and_says_why(tllm, tiny_model_path):
    memory = engine_for(tiny_model_path).memory()
    assert memory["cuda_peak_allocated_mb"] is None and memory["cuda_peak_reserved_mb"] is None
    assert "worker processes" in memory["cuda_peak_note"] and "memory_used_mb" in memory["cuda_peak_note"]


def test_effective_config_reads_back_every_setting(tllm, tiny_model_path):
    eng = engine_for(tiny_model_path, tensorrt={"engine": "trt"})
    effective = eng.effective_config()
    assert (effective["max_batch_size"], effective["max_seq_len"], effective["max_num_tokens"]) == (2048, None, 8192)
    assert effective["build_config"]["opt_batch_size"] == 8
    assert effective["kv_cache_config"]["enable_block_reuse"] is False
    assert effective["kv_cache_config"]["tokens_per_block"] == 32  # TensorRT-LLM's default, recorded
    assert effective["backend"] == "trt" and effective["sampling_params"]["top_k"] == 1


def test_close_shuts_the_executor_down_once(tllm, tiny_model_path):
    eng = engine_for(tiny_model_path)
    eng.close()
    eng.close()
    assert len(tllm.calls("shutdown")) == 1


@pytest.mark.parametrize(
    ("gpus", "fields", "expected"),
    [
        ((1, (9, 0), "g"), {"tensorrt": {"tensor_parallel_size": 2}}, "2 GPUs asked for, 1 visible"),
        ((1, (7, 5), "g"), {"dtype": "bfloat16"}, "bfloat16: needs a GPU of compute capability 8.0"),
    ],
)
def test_what_this_gpu_cannot_run_is_refused_before_load(tllm, tiny_model_path, monkeypatch, gpus, fields, expected):
    monkeypatch.setattr(runtime, "gpus", lambda: gpus)
    with pytest.raises(ConfigError, match=expected):
        engine_for(tiny_model_path, **fields)
    assert not [c for c in tllm.CALLS if c[0].endswith("__init__")]


def test_without_a_gpu_the_engine_says_what_is_missing(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EngineUnavailableError, match="needs an NVIDIA GPU.*llem\\[tensorrt\\].*runner.kind=docker"):
        runtime.gpus()


@pytest.mark.parametrize(
    ("passthrough", "expected"),
    [
        ({"engine_path": "/e"}, "passthrough_kwargs.engine_path: neither an argument of tensorrt_llm.LLM"),
        ({"max_batch_size": 4}, "passthrough_kwargs.max_batch_size: llem sets it"),
    ],
)
def test_passthrough_keys_are_checked(tllm, tiny_model_path, passthrough, expected):
    with pytest.raises(ConfigError, match=expected):
        engine_for(tiny_model_path, passthrough_kwargs=passthrough)


def test_passthrough_reaches_the_llm_and_the_sampling_params(tllm, tiny_model_path):
    eng = engine_for(tiny_model_path, passthrough_kwargs={"trust_remote_code": True, "detokenize": False})
    assert tllm.calls("LLM.__init__")[0]["trust_remote_code"] is True
    eng.generate(PROMPTS[:1])
    assert tllm.calls("generate_async")[0]["sampling_params"].detokenize is False


def test_an_argument_tensorrt_llm_refuses_is_a_config_error(tllm, tiny_model_path, monkeypatch):
    def refuse(**kwargs):
        raise ValueError("max_num_tokens [4] should be greater than max_batch_size")

    monkeypatch.setattr(tllm, "LLM", refuse)
    with pytest.raises(ConfigError, match="TensorRT-LLM rejected the configuration: max_num_tokens"):
        engine_for(tiny_model_path)


def test_a_request_tensorrt_llm_refuses_names_the_fix(tllm, tiny_model_path, monkeypatch):
    eng = engine_for(tiny_model_path)

    def refuse(*args, **kwargs):
        raise ValueError("The sum of prompt length (9) and max_tokens (10) should not exceed max_seq_len (8)")

    monkeypatch.setattr(eng._llm, "generate_async", refuse)
    with pytest.raises(ConfigError, match="should not exceed max_seq_len.*raise tensorrt.max_seq_len"):
        eng.generate(PROMPTS)


def test_unset_dtype_is_bfloat16_where_the_gpu_has_it_else_float16(tllm, tiny_model_path, monkeypatch):
    data = {"model": tiny_model_path, "engine": "tensorrt"}
    assert TensorRTEngine(load_experiment(data)).load() and tllm.calls("LLM.__init__")[-1]["dtype"] == "bfloat16"
    monkeypatch.setattr(runtime, "gpus", lambda: (1, (7, 5), "Older GPU"))
    assert TensorRTEngine(load_experiment(data)).load() and tllm.calls("LLM.__init__")[-1]["dtype"] == "float16"
    section = load_experiment({**data, "tensorrt": {"dtype": "bfloat16"}})  # tensorrt.dtype alone is used too
    with pytest.raises(ConfigError, match="bfloat16: needs a GPU of compute capability 8.0"):
        TensorRTEngine(section).load()


def test_a_whole_measurement_on_the_fake_writes_its_result(tllm, tiny_model_path, tmp_path):
    from llem.measure import measure
    from llem.results.codec import read_result

    synthetic = {"source": "synthetic", "input_len": 16, "output_len": 8, "n_prompts": 3}
    cfg = load_experiment(
        {"model": "llem-tiny", "engine": "tensorrt", "energy_sampler": None, "gpu_telemetry": False}
        | {"dataset": synthetic, "warmup": {"n_warmup": 1}, "tensorrt": {"engine": "trt"}}
    )
    measure(cfg, tmp_path)
    result = read_result(tmp_path / "result.json")
    assert (result.tokens.input_tokens, result.tokens.output_tokens) == (3 * 16, 3 * 8)
    assert result.latency.ttft.count == 3 and result.latency.itl.count == 3 * 7
    assert result.engine.build.cache in ("built", "reused") and "engine_build" not in result.engine.effective_config
    assert tllm.calls("shutdown")  # closed when the measurement ended


def test_the_last_progress_line_is_written_after_the_measured_window_ends(tllm, monkeypatch, tmp_path):
    import time

    from llem.measure import measure
    from llem.progress import Progress
    from llem.telemetry.session import Telemetry

    finished_at: list[float] = []
    window_ends: list[float] = []
    write_final_line, end_telemetry = Progress.finish, Telemetry.finish

    def finish(progress: Progress) -> None:
        if progress.phase == "measuring":
            finished_at.append(time.time())
            time.sleep(0.001)  # a clock that ticks on: a window end taken after this line would be later
        write_final_line(progress)

    def end_window(telemetry: Telemetry, start_s: float, end_s: float, *args: object):
        window_ends.append(end_s)
        return end_telemetry(telemetry, start_s, end_s, *args)

    monkeypatch.setattr(Progress, "finish", finish)
    monkeypatch.setattr(Telemetry, "finish", end_window)
    synthetic = {"source": "synthetic", "input_len": 8, "output_len": 4, "n_prompts": 2}
    cfg = load_experiment(
        {"model": "llem-tiny", "engine": "tensorrt", "energy_sampler": None, "gpu_telemetry": False}
        | {"dataset": synthetic, "warmup": {"n_warmup": 0}}
    )
    measure(cfg, tmp_path)
    assert len(finished_at) == len(window_ends) == 1 and window_ends[0] <= finished_at[0]


def test_the_engine_takes_its_shared_helpers_from_the_common_module_not_from_the_vllm_engine():
    import subprocess
    import sys

    code = (
        "import sys, llem.engines.tensorrt.engine; print(any(m.startswith('llem.engines.vllm.') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
