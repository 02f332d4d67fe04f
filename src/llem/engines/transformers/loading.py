"""Model and tokenizer loading for the Transformers engine: device, dtype, quantisation, compile."""

from __future__ import annotations

import importlib.util
from typing import Any

from llem.config.schema import ExperimentConfig, TransformersConfig
from llem.errors import EngineUnavailableError, ModelUnavailableError


def choose_device(section: TransformersConfig) -> str:
    """``cuda`` when a CUDA device is visible (or device_map names one), else ``cpu``."""
    import torch

    if section.device_map and section.device_map.startswith("cpu"):
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


# Options that only run on a CUDA device.
CUDA_ONLY_CACHES = ("offloaded_static",)


def check_device_options(section: TransformersConfig, device: str) -> None:
    """A clear error for options that cannot run on ``device`` (before any model loads)."""
    cache = section.cache_implementation
    if device != "cuda" and cache is not None and cache.value in CUDA_ONLY_CACHES:
        raise EngineUnavailableError(
            f"transformers.cache_implementation={cache.value} needs a CUDA GPU (it offloads GPU memory to "
            "the CPU); none is visible here. Use static, or leave it unset."
        )


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def default_dtype(device: str) -> str:
    """``dtype`` left unset: bfloat16 on a GPU; float32 on a CPU, where bfloat16 runs several times slower."""
    return "bfloat16" if device == "cuda" else "float32"


def quantization_config(cfg: ExperimentConfig, device: str) -> Any | None:
    """A ``BitsAndBytesConfig`` for load_in_4bit/8bit; clear errors when it cannot run here."""
    t = cfg.transformers
    if t is None or not (t.load_in_4bit or t.load_in_8bit):
        return None
    option = "transformers.load_in_4bit" if t.load_in_4bit else "transformers.load_in_8bit"
    if importlib.util.find_spec("bitsandbytes") is None:
        raise EngineUnavailableError(f"{option} needs bitsandbytes: pip install 'llem[bitsandbytes]' (CUDA GPUs only)")
    if device != "cuda":
        raise EngineUnavailableError(f"{option} needs a CUDA GPU; none is visible here. Remove {option}.")
    from transformers import BitsAndBytesConfig

    kwargs: dict[str, Any] = {"load_in_4bit": bool(t.load_in_4bit), "load_in_8bit": bool(t.load_in_8bit)}
    if t.bnb_4bit_compute_dtype is not None:
        kwargs["bnb_4bit_compute_dtype"] = torch_dtype(t.bnb_4bit_compute_dtype.value)
    if t.bnb_4bit_quant_type is not None:
        kwargs["bnb_4bit_quant_type"] = t.bnb_4bit_quant_type.value
    if t.bnb_4bit_use_double_quant is not None:
        kwargs["bnb_4bit_use_double_quant"] = t.bnb_4bit_use_double_quant
    return BitsAndBytesConfig(**kwargs)


def split_passthrough(passthrough: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split passthrough_kwargs into (generate kwargs, from_pretrained kwargs).

    Keys that are ``GenerationConfig`` attributes go to ``generate``; all others to ``from_pretrained``.
    """
    from transformers import GenerationConfig

    generation_keys = set(GenerationConfig().to_dict())
    gen = {k: v for k, v in (passthrough or {}).items() if k in generation_keys}
    load = {k: v for k, v in (passthrough or {}).items() if k not in generation_keys}
    return gen, load


def model_kwargs(cfg: ExperimentConfig, device: str, load_passthrough: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``AutoModelForCausalLM.from_pretrained``."""
    t = cfg.transformers or TransformersConfig()
    kwargs: dict[str, Any] = {
        "dtype": torch_dtype(cfg.dtype.value if cfg.dtype is not None else default_dtype(device)),
        "low_cpu_mem_usage": True if t.low_cpu_mem_usage is None else t.low_cpu_mem_usage,
        "attn_implementation": (t.attn_implementation.value if t.attn_implementation else "sdpa"),
    }
    if t.device_map is not None:
        kwargs["device_map"] = t.device_map
    elif device == "cuda":
        kwargs["device_map"] = "auto"
    if t.max_memory is not None:
        kwargs["max_memory"] = {(int(k) if str(k).isdigit() else k): v for k, v in t.max_memory.items()}
    if t.tp_plan is not None:
        kwargs["tp_plan"] = t.tp_plan
    if t.tp_size is not None:
        kwargs["tp_size"] = t.tp_size
    quant = quantization_config(cfg, device)
    if quant is not None:
        kwargs["quantization_config"] = quant
    kwargs.update(load_passthrough)
    return kwargs


def load_tokenizer(model_path: str) -> Any:
    """The model's tokenizer with left padding and a pad token (EOS when the model has none)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(model_path)
    except OSError as err:
        raise ModelUnavailableError(f"cannot load the tokenizer of model '{model_path}': {err}") from err
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(model_path: str, kwargs: dict[str, Any], device: str) -> Any:
    """The causal LM, in eval mode, on ``device`` unless a device_map placed it."""
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    except OSError as err:
        raise ModelUnavailableError(
            f"cannot load model '{model_path}': {err}. Use a local folder, a built-in alias "
            "(llem models), or connect to the Hugging Face hub."
        ) from err
    except ImportError as err:
        raise EngineUnavailableError(f"model '{model_path}' needs a missing package: {err}") from err
    if "device_map" not in kwargs and "quantization_config" not in kwargs:
        model.to(device)
    model.eval()
    return model


def compile_model(model: Any, section: TransformersConfig) -> None:
    """``torch.compile`` the forward pass in place when ``transformers.torch_compile`` is set."""
    if not section.torch_compile:
        return
    import torch

    mode = section.torch_compile_mode or "default"
    backend = section.torch_compile_backend or "inductor"
    model.forward = torch.compile(model.forward, mode=mode, backend=backend)


def apply_lora(model: Any, cfg: ExperimentConfig) -> Any:
    """Wrap ``model`` with the configured PEFT adapter (merged when lora.merge_weights)."""
    if cfg.lora is None:
        return model
    if importlib.util.find_spec("peft") is None:
        raise EngineUnavailableError("lora needs the peft package: pip install peft")
    from peft import PeftModel

    source = cfg.lora.adapter_path or cfg.lora.adapter_id
    try:
        model = PeftModel.from_pretrained(model, source)
    except (OSError, ValueError) as err:
        raise ModelUnavailableError(f"cannot load LoRA adapter '{source}': {err}") from err
    return model.merge_and_unload() if cfg.lora.merge_weights else model
