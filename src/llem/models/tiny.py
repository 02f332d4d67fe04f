"""llem-tiny: a tiny random Llama with a byte-level BPE tokenizer trained on llem's built-in prompts.

Deterministic: the tokenizer is trained offline on a file shipped in the package and the weights are
drawn after ``torch.manual_seed(SEED)``, so two preparations give bit-identical files.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

SEED = 1234
VOCAB_SIZE = 4096  # the BPE target; a small corpus may stop short of it
MAX_POSITIONS = 2048  # tokens
BOS, EOS, PAD = "<s>", "</s>", "<pad>"
SHAPE = {  # a few million parameters; grouped-query attention like real Llamas
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


def corpus() -> list[str]:
    """The prompt texts of llem's built-in prompt file (its ``_provenance`` header line is skipped)."""
    data = files("llem.datasets") / "data" / "builtin_prompts.jsonl"
    records = (json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line.strip())
    return [record["prompt"] for record in records if "prompt" in record]


def train_tokenizer(texts: list[str]) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` (adds ``<s>``, pads on the left) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        padding_side="left",
        model_max_length=MAX_POSITIONS,
    )


def build(dest: Path) -> dict[str, Any]:
    """Write llem-tiny (safetensors weights, config, generation config, tokenizer) into ``dest``."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(corpus())
    special = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=MAX_POSITIONS, **SHAPE, **special)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(**special)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return {
        "source": f"random weights (seed {SEED}), tokenizer trained on llem's built-in prompts",
        "n_parameters": sum(p.numel() for p in model.parameters()),
    }
