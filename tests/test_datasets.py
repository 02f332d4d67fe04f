"""llem.datasets: the built-in prompt set, JSON-lines files, ordering, synthetic prompts and AI Energy Score."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections import Counter
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from llem.config.schema import DatasetConfig, DatasetOrder
from llem.datasets import Prompt, aienergyscore, builtin, check_source, load_prompts
from llem.datasets.jsonl import PROMPT_FIELDS
from llem.errors import DatasetError


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """``records`` as JSON lines at ``path``."""
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def from_file(path: Path, **fields: Any) -> list[Prompt]:
    """load_prompts on the file at ``path`` with every prompt (``n_prompts`` = 1 unless given)."""
    fields.setdefault("n_prompts", 1)
    return load_prompts(DatasetConfig(source=str(path), **fields), random_seed=0)


# ---------------------------------------------------------------------------------------------
# The built-in prompt set
# ---------------------------------------------------------------------------------------------


def test_builtin_size_and_categories() -> None:
    prompts = builtin.load()
    categories = Counter(p.source for p in prompts)
    assert len(prompts) >= 220
    assert len(categories) >= 8
    assert None not in categories
    assert min(categories.values()) >= 10  # no token category
    assert len({p.text for p in prompts}) == len(prompts)  # no duplicates


def test_builtin_has_long_prompts() -> None:
    words = [len(p.text.split()) for p in builtin.load()]
    assert sum(n > 150 for n in words) >= 30
    assert sum(n > 400 for n in words) >= 3
    assert min(words) < 15  # short questions too


def test_builtin_header_is_provenance_and_skipped() -> None:
    lines = (files("llem.datasets") / "data" / "builtin_prompts.jsonl").read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    prompts = builtin.load()
    assert set(header) == {"_provenance"}
    for fact in ("llem", "Apache-2.0", "2026-11", str(len(prompts))):
        assert fact in header["_provenance"]
    assert len(prompts) == len(lines) - 1
    assert prompts[0].text == json.loads(lines[1])["prompt"]


def test_builtin_categories_are_interleaved() -> None:
    prompts = builtin.load()
    assert len({p.source for p in prompts[:10]}) >= 8


def test_load_prompts_builtin_takes_first_n_in_file_order() -> None:
    prompts = load_prompts(DatasetConfig(n_prompts=12), random_seed=0)
    assert prompts == builtin.load()[:12]
    assert all(p.max_new_tokens is None for p in prompts)


def test_builtin_n_prompts_too_large() -> None:
    available = len(builtin.load())
    with pytest.raises(DatasetError, match=r"dataset\.n_prompts=1000") as err:
        load_prompts(DatasetConfig(n_prompts=1000), random_seed=0)
    assert f"only {available} prompts" in str(err.value)


# ---------------------------------------------------------------------------------------------
# JSON-lines files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", PROMPT_FIELDS)
def test_jsonl_detects_each_candidate_field(tmp_path: Path, field: str) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": 1, field: "first", "output": "x"}, {"id": 2, field: "second"}])
    assert [p.text for p in from_file(path, n_prompts=2)] == ["first", "second"]


def test_jsonl_field_precedence(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"question": "q", "input": "i", "text": "t", "prompt": "p"}])
    assert from_file(path)[0].text == "p"
    # Alpaca-like records: instruction comes before input; a field that only some records have is passed over
    records = [{"instruction": "Name a colour.", "input": "", "output": "red"}, {"instruction": "Add.", "text": "1+1"}]
    path = write_jsonl(tmp_path / "q.jsonl", records)
    assert [p.text for p in from_file(path, n_prompts=2)] == ["Name a colour.", "Add."]


def test_jsonl_record_without_the_field_names_the_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"text": "a"}, {"text": "b"}, {"question": "c"}])
    with pytest.raises(DatasetError, match=r"p\.jsonl line 3 has no field 'text'"):
        from_file(path)


def test_jsonl_prompt_field_override(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "ignored", "body": "used"}])
    assert from_file(path, prompt_field="body")[0].text == "used"
    with pytest.raises(DatasetError, match=r"dataset\.prompt_field='missing'.*fields found: prompt, body"):
        from_file(path, prompt_field="missing")


def test_jsonl_source_labels_and_empty_prompts(tmp_path: Path) -> None:
    records = [{"text": "a", "source": "maths"}, {"text": "  "}, {"text": "b", "source": 7}, {"text": "c"}]
    path = write_jsonl(tmp_path / "p.jsonl", records)
    prompts = from_file(path, n_prompts=3)
    assert prompts == [Prompt("a", "maths"), Prompt("b", "7"), Prompt("c", None)]


def test_jsonl_any_existing_file_name(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "prompts.txt", [{"prompt": "hello"}])
    assert from_file(path) == [Prompt("hello")]


def test_jsonl_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.jsonl"
    with pytest.raises(DatasetError, match="check dataset.source") as err:
        from_file(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("n_prompts", [1, 2, 3])
def test_check_source_says_what_load_prompts_would(tmp_path: Path, n_prompts: int) -> None:
    """Without a model: the same error as loading, or none when loading succeeds."""
    dataset = DatasetConfig(source=str(write_jsonl(tmp_path / "two.jsonl", [{"prompt": "a"}, {"prompt": "b"}])))
    dataset.n_prompts = n_prompts
    try:
        load_prompts(dataset, random_seed=0)
    except DatasetError as err:
        with pytest.raises(DatasetError) as checked:
            check_source(dataset)
        assert str(checked.value) == str(err)
    else:
        check_source(dataset)


def test_check_source_leaves_generated_and_hub_sources_to_the_job(tmp_path: Path) -> None:
    check_source(DatasetConfig(source="synthetic", n_prompts=10**6))
    check_source(DatasetConfig(source="aienergyscore", n_prompts=10**6))  # no network asked
    with pytest.raises(DatasetError, match="nowhere.jsonl does not exist"):
        check_source(DatasetConfig(source=str(tmp_path / "nowhere.jsonl")))


def test_jsonl_directory_named_like_a_file(tmp_path: Path) -> None:
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(DatasetError, match=r"folder\.jsonl is not a file; check dataset\.source"):
        from_file(tmp_path / "folder.jsonl")


def test_jsonl_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"prompt": "one"}\r\n{"prompt": "two"}\r\n')
    assert from_file(path, n_prompts=2) == [Prompt("one"), Prompt("two")]


def test_jsonl_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DatasetError, match="is empty") as err:
        from_file(path)
    assert str(path) in str(err.value)


def test_jsonl_only_header_is_empty(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"_provenance": "written by hand"}])
    with pytest.raises(DatasetError, match="is empty"):
        from_file(path)


def test_jsonl_all_prompts_empty(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": ""}, {"prompt": " "}])
    with pytest.raises(DatasetError, match="every 'prompt' value is empty"):
        from_file(path)


def test_jsonl_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "ok"}\n\n{"prompt": "no closing brace"\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"line 3 is not valid JSON") as err:
        from_file(path)
    assert str(path) in str(err.value)


def test_jsonl_line_not_an_object(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "ok"}, ["a", "list"]])
    with pytest.raises(DatasetError, match=r"line 2 is a JSON list, not an object"):
        from_file(path)


def test_jsonl_no_usable_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"body": "x", "label": 1}, {"body": "y", "meta": {}}])
    with pytest.raises(DatasetError) as err:
        from_file(path)
    message = str(err.value)
    assert str(path) in message
    assert "fields found: body, label, meta" in message
    assert all(field in message for field in PROMPT_FIELDS)
    assert "dataset.prompt_field" in message


def test_jsonl_non_string_prompt_names_the_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "fine"}, {"prompt": ["not", "text"]}])
    with pytest.raises(DatasetError, match=r"line 2: field 'prompt' is a list, not a string"):
        from_file(path)


def test_jsonl_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"prompt": "café"}\n'.encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8"):
        from_file(path)


@pytest.mark.parametrize(("source", "suggestion"), [("bultin", "builtin"), ("synthetc", "synthetic"), ("xyz", None)])
def test_unknown_source(source: str, suggestion: str | None) -> None:
    with pytest.raises(DatasetError) as err:
        load_prompts(DatasetConfig(source=source), random_seed=0)
    message = str(err.value)
    assert all(alias in message for alias in ("builtin", "synthetic", "aienergyscore"))
    assert ".jsonl" in message
    assert ("did you mean" in message) == (suggestion is not None)
    if suggestion:
        assert f"did you mean dataset.source={suggestion}?" in message


# ---------------------------------------------------------------------------------------------
# Order
# ---------------------------------------------------------------------------------------------


def test_interleaved_is_file_order() -> None:
    prompts = load_prompts(DatasetConfig(n_prompts=50, order=DatasetOrder.interleaved), random_seed=3)
    assert prompts == builtin.load()[:50]


def test_grouped_blocks_are_contiguous_and_stable() -> None:
    everything = builtin.load()
    grouped = load_prompts(DatasetConfig(n_prompts=len(everything), order=DatasetOrder.grouped), random_seed=0)
    labels = [p.source for p in grouped]
    blocks = [label for i, label in enumerate(labels) if i == 0 or label != labels[i - 1]]
    assert len(blocks) == len(set(labels))  # each label forms one block
    assert blocks == list(dict.fromkeys(p.source for p in everything))  # in order of first appearance
    for label in blocks:
        assert [p for p in grouped if p.source == label] == [p for p in everything if p.source == label]


def test_grouped_unlabelled_prompts_form_one_block(tmp_path: Path) -> None:
    records = [{"prompt": "1", "source": "b"}, {"prompt": "2"}, {"prompt": "3", "source": "a"}]
    records += [{"prompt": "4", "source": "b"}, {"prompt": "5"}]
    path = write_jsonl(tmp_path / "p.jsonl", records)
    prompts = from_file(path, n_prompts=5, order="grouped")
    assert [p.text for p in prompts] == ["1", "4", "2", "5", "3"]


def test_shuffled_is_seeded_and_drawn_from_the_whole_set() -> None:
    cfg = DatasetConfig(n_prompts=20, order=DatasetOrder.shuffled)
    first, again, other = (load_prompts(cfg, random_seed=seed) for seed in (1, 1, 2))
    assert first == again
    assert first != other
    assert {p.text for p in first} != {p.text for p in other}  # different seeds pick different subsets
    assert first != builtin.load()[:20]
    assert len({p.text for p in first}) == 20


# ---------------------------------------------------------------------------------------------
# Synthetic prompts
# ---------------------------------------------------------------------------------------------


def train_bpe(pre_tokenizer: str) -> Any:
    """A small BPE tokenizer trained on the built-in prompts, wrapped as ``PreTrainedTokenizerFast``.

    ``byte_level``: GPT-2 style; ``metaspace``: SentencePiece style (a prefix space is added on encode).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if pre_tokenizer == "byte_level":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        alphabet = []
    trainer = trainers.BpeTrainer(
        vocab_size=1500,
        special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=alphabet,
        show_progress=False,
    )
    tokenizer.train_from_iterator([p.text for p in builtin.load()], trainer=trainer)
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


@pytest.fixture(scope="module", params=["byte_level", "metaspace"])
def tokenizer(request: pytest.FixtureRequest) -> Any:
    return train_bpe(request.param)


def synthetic(tokenizer: Any, random_seed: int = 0, **fields: Any) -> list[Prompt]:
    fields = {"source": "synthetic", "n_prompts": 8, "input_len": 32, "output_len": 16, **fields}
    return load_prompts(DatasetConfig(**fields), random_seed=random_seed, tokenizer=tokenizer)


@pytest.mark.parametrize("input_len", [2, 3, 7, 64, 300])
def test_synthetic_prompts_have_exact_token_length(tokenizer: Any, input_len: int) -> None:
    prompts = synthetic(tokenizer, input_len=input_len, output_len=5, n_prompts=12)
    assert len(prompts) == 12
    for prompt in prompts:
        ids = tokenizer(prompt.text)["input_ids"]  # as the engines encode it
        assert len(ids) == input_len and ids[0] == tokenizer.bos_token_id  # <s> counted
        assert not set(ids[1:]) & set(tokenizer.all_special_ids)
        assert prompt.max_new_tokens == 5
    assert len({p.text for p in prompts}) == 12


def test_synthetic_input_len_leaves_room_for_prompt_tokens(tokenizer: Any) -> None:
    with pytest.raises(DatasetError, match=r"dataset\.input_len=1 leaves no prompt tokens.*input_len=2 or more"):
        synthetic(tokenizer, input_len=1)


def test_synthetic_is_deterministic_per_seed(tokenizer: Any) -> None:
    assert synthetic(tokenizer, random_seed=1) == synthetic(tokenizer, random_seed=1)
    assert synthetic(tokenizer, random_seed=1) != synthetic(tokenizer, random_seed=2)
    # dataset.seed, when set, replaces random_seed
    assert synthetic(tokenizer, random_seed=1, seed=9) == synthetic(tokenizer, random_seed=2, seed=9)
    assert synthetic(tokenizer, random_seed=1, seed=9) != synthetic(tokenizer, random_seed=1)


@pytest.mark.parametrize("missing", ["input_len", "output_len"])
def test_synthetic_needs_lengths(tokenizer: Any, missing: str) -> None:
    with pytest.raises(DatasetError, match=rf"needs dataset\.{missing}"):
        synthetic(tokenizer, **{missing: None})


def test_synthetic_needs_a_tokenizer() -> None:
    with pytest.raises(DatasetError, match="needs the model's tokenizer"):
        synthetic(None)


# ---------------------------------------------------------------------------------------------
# AI Energy Score
# ---------------------------------------------------------------------------------------------


def test_aienergyscore_from_a_local_json_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "text_generation"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", [{"text": f"prompt {i}", "id": i} for i in range(6)])
    # the real loader, pointed at a local folder; its cache stays in tmp_path
    monkeypatch.setattr(aienergyscore, "HUB_ID", str(folder))
    monkeypatch.setattr(datasets, "load_dataset", functools.partial(datasets.load_dataset, cache_dir=str(tmp_path)))
    prompts = load_prompts(DatasetConfig(source="aienergyscore", n_prompts=4), random_seed=0)
    assert prompts == [Prompt(f"prompt {i}") for i in range(4)]
    with pytest.raises(DatasetError, match=r"dataset\.n_prompts=7.*only 6 prompts"):
        load_prompts(DatasetConfig(source="aienergyscore", n_prompts=7), random_seed=0)


def test_aienergyscore_from_a_saved_dataset(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    table = datasets.Dataset.from_dict({"prompt": ["a", "b", ""], "source": ["wiki", "chat", "chat"]})
    table.save_to_disk(str(tmp_path / "saved"))
    calls = []

    def load_saved(hub_id: str, split: str) -> Any:
        calls.append((hub_id, split))
        return datasets.load_from_disk(hub_id)

    prompts = aienergyscore.load(hub_id=str(tmp_path / "saved"), load_dataset=load_saved)
    assert prompts == [Prompt("a", "wiki"), Prompt("b", "chat")]
    assert calls == [(str(tmp_path / "saved"), "train")]
    with pytest.raises(DatasetError, match=r"dataset\.prompt_field='body'.*fields found: prompt, source"):
        aienergyscore.load("body", hub_id=str(tmp_path / "saved"), load_dataset=load_saved)


def test_aienergyscore_unreachable_hub() -> None:
    def offline(hub_id: str, split: str) -> Any:
        raise ConnectionError("Couldn't reach the Hugging Face Hub")

    with pytest.raises(DatasetError) as err:
        aienergyscore.load(load_dataset=offline)
    message = str(err.value)
    assert "AIEnergyScore/text_generation" in message
    assert "Couldn't reach" in message
    for alternative in ("dataset.source=builtin", ".jsonl", "dataset.source=synthetic"):
        assert alternative in message
    assert isinstance(err.value.__cause__, ConnectionError)


def test_aienergyscore_without_datasets_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(DatasetError, match=r"pip install 'llem\[aienergyscore\]'") as err:
        load_prompts(DatasetConfig(source="aienergyscore"), random_seed=0)
    assert "dataset.source=builtin" in str(err.value)


# ---------------------------------------------------------------------------------------------
# Import cost
# ---------------------------------------------------------------------------------------------


def test_import_stays_light() -> None:
    code = (
        "import sys, llem.datasets; "
        "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'tokenizers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_aienergyscore_fails_fast_when_the_hub_is_unreachable(tmp_path: Path) -> None:
    """No half-minute of retries: an unreachable hub means the local cache or a clear error."""
    code = (
        "from llem.datasets import aienergyscore\n"
        "try:\n"
        "    aienergyscore.load()\n"
        "except Exception as err:\n"
        "    print(type(err).__name__, err)\n"
    )
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path)}  # port 9: nothing listens
    env.pop("HF_HUB_OFFLINE", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60).stdout
    assert out.startswith("DatasetError") and "hub is unreachable" in out and "dataset.source=builtin" in out
