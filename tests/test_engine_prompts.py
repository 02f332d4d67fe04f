"""Prompt encoding shared by every engine: chat template, truncation, the same token ids for all."""

from __future__ import annotations

import pytest

from llem.config.schema import DatasetConfig
from llem.datasets import Prompt
from llem.engines.prompts import applies_chat_template, encode_prompts
from llem.engines.transformers.loading import load_tokenizer
from llem.errors import DatasetError

TEMPLATE = "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}</s>{% endfor %}<s>assistant:"
PROMPTS = [Prompt(text="Describe the water cycle."), Prompt(text="Hello")]


@pytest.fixture
def tokenizer(tiny_model_path):
    return load_tokenizer(tiny_model_path)


def test_template_is_applied_by_default_only_when_the_tokenizer_has_one(tokenizer):
    assert applies_chat_template(DatasetConfig(), tokenizer) is False
    tokenizer.chat_template = TEMPLATE
    assert applies_chat_template(DatasetConfig(), tokenizer) is True
    assert applies_chat_template(DatasetConfig(chat_template=False), tokenizer) is False
    synthetic = DatasetConfig(source="synthetic", input_len=8, output_len=4)
    assert applies_chat_template(synthetic, tokenizer) is False  # token counts stay exact


def test_asking_for_a_template_the_tokenizer_lacks_is_a_clear_error(tokenizer):
    with pytest.raises(
        DatasetError, match="dataset.chat_template=true, but this model's tokenizer has no chat template"
    ):
        applies_chat_template(DatasetConfig(chat_template=True), tokenizer)


def test_templated_prompts_are_one_user_turn_without_doubled_special_tokens(tokenizer):
    tokenizer.chat_template = TEMPLATE
    (ids, _) = encode_prompts(tokenizer, PROMPTS, None, chat_template=True)
    text = tokenizer.decode(ids)
    assert text == "<s>user: Describe the water cycle.</s><s>assistant:"
    plain = encode_prompts(tokenizer, PROMPTS, None, chat_template=False)
    assert tokenizer.decode(plain[1]) == "<s>Hello"  # the tokenizer's own BOS when there is no template


def test_prompts_are_cut_to_max_input_tokens(tokenizer):
    ids = encode_prompts(tokenizer, PROMPTS, 3, chat_template=False)
    assert [len(row) for row in ids] == [3, 2]
    assert ids[0] == encode_prompts(tokenizer, PROMPTS, None, chat_template=False)[0][:3]
