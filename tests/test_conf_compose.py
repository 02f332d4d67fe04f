"""Every config group option composes into a valid experiment; bad command lines exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from llem.config.load import config_hash, load_experiment, to_dict
from llem.config.overrides import CONFIG_GROUPS, group_options, override_args, precheck_cli
from llem.config.schema import JOB_ONLY_SECTIONS
from llem.config.store import register_configs

register_configs()


def composed(*overrides: str):
    with initialize_config_module(config_module="llem.conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    data = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    for section in JOB_ONLY_SECTIONS:
        data.pop(section)
    return load_experiment(data)


def test_groups_have_their_options():
    assert group_options("engine") == ("tensorrt", "transformers", "vllm")
    assert set(group_options("dataset")) >= {"builtin", "jsonl", "synthetic", "aienergyscore"}
    assert group_options("decoder") == ("creative", "deterministic", "factual", "standard")
    assert group_options("profile") == ("publication", "quick")


def test_default_composition():
    cfg = composed()
    assert cfg.engine.value == "transformers" and cfg.transformers is not None
    assert cfg.vllm is None and cfg.tensorrt is None
    assert cfg.model == "smollm2-135m" and cfg.dataset.source == "builtin"


@pytest.mark.parametrize("engine", ["transformers", "vllm", "tensorrt"])
def test_engine_option_fills_only_its_section(engine):
    cfg = composed(f"engine={engine}", "dtype=float16")
    assert cfg.engine.value == engine
    for other in ("transformers", "vllm", "tensorrt"):
        assert (getattr(cfg, other) is not None) == (other == engine)


def test_engine_override_path_is_the_section_path():
    cfg = composed("engine=vllm", "dtype=float16", "vllm.engine.block_size=16")
    assert cfg.vllm.engine.block_size == 16


@pytest.mark.parametrize(
    ("overrides", "path", "value"),
    [
        (["lora.adapter_id=org/adapter"], "lora.adapter_id", "org/adapter"),
        (
            ["engine=vllm", "decoder=deterministic", "vllm.beam_search.beam_width=4"],
            "vllm.beam_search.beam_width",
            4,
        ),
        (
            ["engine=vllm", "dtype=float16", "vllm.engine.speculative_config.method=ngram"],
            "vllm.engine.speculative_config.method",
            "ngram",
        ),
        (["engine=tensorrt", "dtype=float16", "tensorrt.quant.quant_algo=W8A16"], "tensorrt.quant.quant_algo", "W8A16"),
        (["+passthrough_kwargs.trust_remote_code=false"], "passthrough_kwargs.trust_remote_code", False),
    ],
)
def test_fields_inside_optional_sections_are_settable(overrides, path, value):
    cfg = to_dict(composed(*overrides))
    for key in path.split("."):
        cfg = cfg[key]
    assert cfg == value


@pytest.mark.parametrize("option", ["builtin", "synthetic", "aienergyscore"])
def test_dataset_options(option):
    assert composed(f"dataset={option}").dataset.source == option


@pytest.mark.parametrize("engine", ["transformers", "vllm", "tensorrt"])
def test_hydra_and_plain_data_resolve_to_the_same_config(engine):
    overrides = {
        "engine": engine,
        "dtype": "float16",
        "model": "m",
        "max_output_tokens": 7,
        "dataset": {"n_prompts": 3},
    }
    via_hydra = composed(f"engine={engine}", "dtype=float16", "model=m", "max_output_tokens=7", "dataset.n_prompts=3")
    assert config_hash(via_hydra) == config_hash(load_experiment(overrides))


def test_jsonl_option_needs_a_source():
    assert composed("dataset=jsonl", "dataset.source=my.jsonl").dataset.source == "my.jsonl"


@pytest.mark.parametrize("preset", ["deterministic", "standard", "creative", "factual"])
def test_decoder_presets(preset):
    cfg = composed(f"decoder={preset}")
    assert cfg.decoder.preset.value == preset


def test_quick_and_publication_profiles():
    quick = composed("profile=quick")
    assert (quick.warmup.n_warmup, quick.warmup.thermal_floor_seconds, quick.baseline.duration_seconds) == (2, 0.0, 5.0)
    publication = composed("profile=publication")
    assert publication.warmup.thermal_floor_seconds == 60.0 and publication.baseline.strategy.value == "fresh"


def test_every_group_option_composes():
    for group in CONFIG_GROUPS:
        for option in group_options(group):
            extra = ["dataset.source=x.jsonl"] if option == "jsonl" else []
            extra += ["dtype=float16"] if option in ("vllm", "tensorrt") else []
            assert composed(f"{group}={option}", *extra) is not None


def test_override_args_skip_hydra_flags():
    argv = ["-m", "--cfg", "job", "a=1", "--info", "plugins", "-cn", "x", "b=2", "--multirun"]
    assert override_args(argv) == ["a=1", "b=2"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["transformers.batchsize=4"], "did you mean batch_size"),
        (["dtype=bfloat61"], "allowed values: float32, float16, bfloat16"),
        (["dtype=float32,bfloat61", "-m"], "bfloat61"),
        (["engine=vlm"], "did you mean vllm"),
        (["backend=vllm"], "use engine"),
        (["precision=fp16"], "use dtype"),
        (["+n=5"], "use dataset.n_prompts"),
        (["dataset.n_prompts=many"], "expected int"),
    ],
)
def test_precheck_catches_typos(argv, expected):
    assert expected in (precheck_cli(argv) or "")


def test_precheck_accepts_valid_lines():
    assert precheck_cli(["engine=vllm", "vllm.engine.block_size=8,16", "-m", "hydra/launcher=basic"]) is None
    assert precheck_cli(["~decoder", "dataset.n_prompts=range(1,4)", "passthrough_kwargs.foo=1", "-m"]) is None


def run_llem(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llem", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cli_typo_exits_2_without_traceback(tmp_path):
    proc = run_llem("transformers.batchsize=4", cwd=tmp_path)
    assert proc.returncode == 2
    assert "did you mean batch_size" in proc.stderr and "Traceback" not in proc.stderr


def test_cross_field_error_exits_2_before_anything_is_written(tmp_path):
    proc = run_llem("engine=tensorrt", "dtype=float32", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == ["llem: dtype: tensorrt does not run float32; use one of bfloat16, float16"]
    assert not (tmp_path / "run").exists()


def test_cfg_job_runs_llem_rules(tmp_path):
    proc = run_llem("--cfg", "job", "decoder.top_p=5", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["llem: decoder.top_p: must be between 0.0 and 1.0, got 5.0"]


def test_cfg_job_works_from_any_directory(tmp_path):
    proc = run_llem("--cfg", "job", "engine=vllm", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "engine: vllm" in proc.stdout and "block_size" in proc.stdout
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("argv", "printed"),
    [
        (["transformers.max_memory={cpu:1GiB}"], "  max_memory:\n    cpu: 1GiB\n"),
        (["transformers.max_memory={0:20GiB,cpu:1GiB}"], "  max_memory:\n    cpu: 1GiB\n    '0': 20GiB\n"),
        (["passthrough_kwargs={a:1}"], "passthrough_kwargs:\n  a: 1\n"),
        (["passthrough_kwargs={a:{b:[1,2]}}", "passthrough_kwargs.c=x"], "passthrough_kwargs:\n  a:\n    b:\n"),
    ],
)
def test_free_form_mappings_take_the_plain_spelling(tmp_path, argv, printed):
    proc = run_llem("--cfg", "job", *argv, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert printed in proc.stdout


def test_shell_completion_reaches_hydra(tmp_path):
    proc = run_llem("--shell-completion", "install=bash", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "hydra_bash_completion" in proc.stdout


def test_a_folder_with_a_result_is_never_written_again(tmp_path):
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "result.json").write_text('{"kept": true}')
    for key in ("output_dir", "hydra.run.dir"):
        proc = run_llem("model=llem-tiny", f"{key}={earlier}", cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        expected = f"llem: {key}={earlier}: holds the result of an earlier run (result.json); choose another folder"
        assert proc.stderr.splitlines() == [expected + " or remove it"]
    sweep = tmp_path / "sweep"
    (sweep / "0").mkdir(parents=True)
    (sweep / "0" / "result.json").write_text('{"kept": true}')
    proc = run_llem("model=llem-tiny", "dtype=float32,bfloat16", f"hydra.sweep.dir={sweep}", "-m", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith(f"llem: hydra.sweep.dir={sweep}: holds the results"), proc
    assert sorted(p.name for p in earlier.iterdir()) == ["result.json"] and sorted(sweep.iterdir()) == [sweep / "0"]
    assert (earlier / "result.json").read_text() == '{"kept": true}' == (sweep / "0" / "result.json").read_text()


def cuda_visible() -> bool:
    return os.path.exists("/proc/driver/nvidia/version") and os.environ.get("CUDA_VISIBLE_DEVICES") not in ("", "-1")


# One example of each class of bad command line, and the start of the one line llem prints for it.
BAD_COMMAND_LINES = [
    (["vllm.engine.block_size=16"], "vllm.engine.block_size: the vllm section is used with engine=vllm; add engine"),
    (["engine=tensorrt", "transformers.batch_size=2"], "transformers.batch_size: the transformers section is used"),
    (["engine=null"], "engine=null: engine cannot be left out"),
    (["dataset=null"], "dataset=null: dataset cannot be left out"),
    (["~engine"], "~engine: engine cannot be left out"),
    (["~model"], "~model: llem's fields cannot be removed"),
    (["~=1"], "~=1: no key before '='"),
    (["decoder.temperature=glob(*)"], "decoder.temperature=glob(*): glob() selects options of a config group"),
    (["decoder.temperature=interval(0,1)"], "decoder.temperature=interval(0,1): interval() is sampled"),
    (["dataset.n_prompts=range(1,100000000)", "-m"], "the sweep has 99,999,999 jobs"),
    (["decoder.temperature=range(0,inf)", "-m"], "decoder.temperature=range(0,inf): start, stop and step must be"),
    (["dtype=float16,bfloat16"], "dtype=float16,bfloat16: several values make a sweep: add -m"),
    (["decoder.temperature=inf"], "decoder.temperature: must be a finite number, got inf"),
    (["decoder.top_p=nan"], "decoder.top_p: must be a finite number, got nan"),
    (["engine=vllm", "vllm.engine.gpu_memory_utilization=-inf"], "vllm.engine.gpu_memory_utilization: must be a fini"),
    (["runner.experiment_timeout_seconds=inf"], "runner.experiment_timeout_seconds: must be a finite number"),
    (["transformers.max_memory={0:nan}"], "transformers.max_memory.0: must be a finite number, got nan"),
    (["decoder.min_new_tokens=50", "max_output_tokens=8"], "decoder.min_new_tokens: 50 is above max_output_tokens"),
    (["dataset=jsonl"], "dataset=jsonl: set dataset.source=... as well"),
    (["study_run.position=3"], "study_run.position=3: study_run is filled by `llem run`"),
    (["+model=x"], "Could not append to config. An item is already at 'model'"),
    (["model=${nope}"], "model: Interpolation key 'nope' not found"),
    (["hydra.run.dir={file}/run"], "hydra.run.dir={file}/run: {file} is a file, not a folder"),
    (["output_dir={file}/run"], "output_dir={file}/run: {file} is a file, not a folder"),
    (["dtype=float32,bfloat16", "hydra.sweep.dir={file}/s", "-m"], "hydra.sweep.dir={file}/s: {file} is a file"),
    (["warmup.cv_threshold=nan", "--cfg", "job"], "warmup.cv_threshold: must be a finite number, got nan"),
    (["decoder=null"], "decoder=null: a config group takes no null; leave decoder unset, or choose one of creative"),
    (["profile=null"], "profile=null: a config group takes no null; leave profile unset, or choose one of publication"),
    (["dtype=float32,bfloat16", "-m", "--cfg", "job"], "-m and --cfg: Hydra runs one of --run, -m, --cfg"),
    (["--cfg", "job", "--info"], "--cfg and --info: Hydra runs one of"),
    (["-m", "--cfg", "hydra"], "-m and --cfg: Hydra runs one of"),
    (["--cfg", "nope"], "argument --cfg/-c: invalid choice: 'nope'"),
    (["--shell-completion"], "--shell-completion: give one of install=bash, uninstall=bash or query=bash"),
    (["--bogus"], "--bogus: no such flag; see python -m llem --help"),
    (["-m", "dtype=float32,bfloat16"], "dtype=float32,bfloat16: give all overrides together, before or after"),
    (["--config-name", "nope"], "--config-name nope: no such config; choose one of config"),
    (["--config-dir", "{file}/conf"], "--config-dir {file}/conf: no such folder"),
    (["--package", "nope", "--cfg", "job"], "--package nope: no such section in the config; choose one of hydra"),
    (["dtype=float32,bfloat16", "output_dir=out", "-m"], "output_dir=out: every job of the sweep would write there"),
    (["dtype=float32", "output_dir=out/${hydra.job.num}", "-m"], "output_dir=out/${hydra.job.num}: write ${hydra:job"),
    (["++transformers.max_memory={0:20GiB}"], "++transformers.max_memory={0:20GiB}: a key that reads as a number"),
    (["hydra.nope=1"], "hydra.nope: no such key to override; write ++hydra.nope=... to add it"),
]
if not cuda_visible():
    BAD_COMMAND_LINES.append((["transformers.device_map=cuda"], "transformers.device_map=cuda: no CUDA GPU is visible"))


@pytest.mark.parametrize(("argv", "expected"), BAD_COMMAND_LINES, ids=[" ".join(a) for a, _ in BAD_COMMAND_LINES])
def test_each_bad_command_line_is_one_llem_line_and_exit_2(tmp_path, argv, expected):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    argv = [a.replace("{file}", str(blocker)) for a in argv]
    proc = run_llem("model=llem-tiny", *argv, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    (line,) = proc.stderr.splitlines()
    assert line.startswith("llem: " + expected.replace("{file}", str(blocker))), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing was written
