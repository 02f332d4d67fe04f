"""Hostile study files and flags: each ends in one ConfigError naming the key or file, never a traceback.

Covers what was found by fuzzing: file kinds and encodings, YAML structure (nesting, aliases,
duplicate keys, dates, binary), shapes of ``engine:`` and ``name:``, cycles and size limits, the
encoder's free-form keys (checked through Hydra's own composition), rich markup in user text and a
closed output pipe. The property-based version of these is tests/test_study_fuzz.py.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from rich.console import Console

from llem.config.store import register_configs
from llem.errors import ConfigError
from llem.study.launch import RunOptions, build_plan
from llem.study.plan import plan_study
from llem.study.report import SHOWN_RUNS, final_panel, print_plan
from llem.study.spec import parse_study, read_yaml

register_configs()

TINY = "model: llem-tiny\n"
ONE = TINY + "experiments: [{}]\n"


def write(tmp_path: Path, text: str | bytes, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def plan_of(path: Path, **options):
    return build_plan(path, RunOptions(**options))[0]


def refused(path: Path, match: str, **options) -> ConfigError:
    with pytest.raises(ConfigError, match=match) as caught:
        plan_of(path, **options)
    return caught.value


# --- files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b'model: "caf\xe9"\n', r"not UTF-8 text \(byte 0xe9 at offset 11\)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not UTF-8 text"),
        (b'model: "\xed\xa0\x80"\n', "not UTF-8 text"),  # a lone surrogate, encoded
        (b"model: x\x00\n", "not valid YAML"),  # NUL bytes are valid UTF-8, not YAML
    ],
)
def test_bytes_that_are_not_text_are_refused(tmp_path, content, match):
    refused(write(tmp_path, content), match)


def test_a_base_file_that_is_not_utf8_is_refused_by_name(tmp_path):
    write(tmp_path, b'model: "caf\xe9"\n', "base.yaml")
    error = refused(write(tmp_path, "base: base.yaml\nexperiments: [{}]\n"), "base.yaml: not UTF-8")
    assert "study.yaml" not in str(error)


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff"])
def test_a_lone_surrogate_escape_is_refused_with_its_key(tmp_path, escape):
    refused(write(tmp_path, f'model: "{escape}"\nexperiments: [{{}}]\n'), "model: contains an unpaired surrogate")


def test_a_nul_escape_is_refused_with_its_key(tmp_path):
    refused(write(tmp_path, 'model: "a\\0b"\nexperiments: [{}]\n'), "model: contains a NUL character")


def test_a_folder_is_refused(tmp_path):
    refused(tmp_path, "is a folder")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "study.yaml"
    os.mkfifo(fifo)
    refused(fifo, "not a regular file")  # opening it for reading would block without O_NONBLOCK


def test_a_missing_file_is_refused(tmp_path):
    refused(tmp_path / "nope.yaml", "no such file")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("name", ["/proc/self/status", "/proc/self/environ", "/proc/self/mem", "/proc/self/cmdline"])
def test_proc_files_are_refused(name):
    with pytest.raises(ConfigError, match=name):
        plan_of(Path(name))


# --- YAML structure ----------------------------------------------------------------------------


def test_deep_nesting_is_refused_at_the_line(tmp_path):
    refused(write(tmp_path, "a: " + "[" * 500 + "]" * 500 + "\n"), r"line 1, .*nested more than 64 levels")
    refused(write(tmp_path, "".join("  " * i + f"k{i}:\n" for i in range(500))), "nested more than 64 levels")


def test_an_alias_inside_its_own_node_is_refused(tmp_path):
    refused(write(tmp_path, "a: &x [*x]\n"), r"alias \*x is inside the node it names")
    refused(write(tmp_path, "a: &x {b: *x}\n"), r"alias \*x is inside the node it names")


def test_alias_fan_out_is_refused_before_it_expands(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    error = refused(write(tmp_path, "\n".join(lines) + "\n"), "more than 100,000 values")
    assert "--max-runs" in str(error)


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("model: a\nmodel: b\nexperiments: [{}]\n", "model", 2),
        ("model: a\nsweep:\n  dtype: [float16]\n  dtype: [bfloat16]\n", "dtype", 4),
        ("experiments: [{dtype: float16, dtype: bfloat16}]\n", "dtype", 1),
    ],
)
def test_duplicate_keys_are_refused_with_key_and_line(tmp_path, text, key, line):
    refused(write(tmp_path, text), rf"line {line}, .*duplicate key '{key}'")


def test_merge_keys_may_repeat_what_they_merge(tmp_path):
    text = TINY + "x: &d {dtype: float16}\nexperiments: [{<<: *d, dtype: bfloat16}]\n"
    with pytest.raises(ConfigError, match="unknown key 'x'"):  # the merge itself is accepted
        plan_of(write(tmp_path, text))


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("2024-01-01", "model: 2024-01-01 reads as a date; quote it"),
        ("2024-01-01T10:00:00Z", "model: .* reads as a date"),
        ("!!binary aGVsbG8=", r"model: binary \(!!binary\)"),
        ("!!set {a, b}", "model: a YAML set"),
        ("!!omap [a: 1]", r"model\[0\]: a YAML tuple"),
    ],
)
def test_values_that_are_not_plain_data_are_refused_with_their_key(tmp_path, value, match):
    refused(write(tmp_path, f"model: {value}\nexperiments: [{{}}]\n"), match)


def test_a_date_deep_inside_names_its_dotted_key(tmp_path):
    refused(
        write(tmp_path, TINY + "experiments: [{dataset: {path: 2024-01-01}}]\n"), r"experiments\[0\]\.dataset\.path"
    )


# --- shapes of study keys ----------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["{transformers: 1}", "[]", "[transformers, [vllm]]", "3"])
def test_engine_of_the_wrong_shape_is_refused(tmp_path, engine):
    refused(write(tmp_path, TINY + f"engine: {engine}\nexperiments: [{{}}]\n"), "engine: expected an engine name")


@pytest.mark.parametrize("engine", ["[transformers, vllm]", "{a: 1}"])
def test_engine_of_the_wrong_shape_in_an_experiment_file_is_refused(tmp_path, engine):
    refused(write(tmp_path, TINY + f"engine: {engine}\n"), "engine: invalid value")


def test_latin_square_with_every_experiment_invalid_is_a_clear_error(tmp_path):
    text = TINY + "study_execution: {experiment_order: latin_square}\nexperiments: [{dtype: bad}]\n"
    refused(write(tmp_path, text), r"every experiment is invalid \(1 skipped\)")
    spec = parse_study({"experiments": [{"dtype": "bad"}], "study_execution": {"experiment_order": "latin_square"}})
    assert plan_study(spec).runs == []


def test_a_typo_in_an_experiment_is_skipped_not_encoded(tmp_path):
    text = TINY + 'experiments: [{swep: {"a b": 1, "é": [2024-01-01x]}}, {}]\n'
    plan = plan_of(write(tmp_path, text))
    (skipped,) = plan.skipped
    assert "unknown key 'swep'" in skipped.reason
    assert skipped.overrides == ['model="llem-tiny"', "swep.a b=1", 'swep.é=["2024-01-01x"]']


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("[a, b]", "expected text, got list"),
        ("{a: 1}", "expected text, got dict"),
        ("3", "expected text, got int"),
        ("../x", "path separator"),
        ("/tmp/x", "path separator"),
        ("a\\\\b", "path separator"),
        ('""', "not a folder name"),
        ("' '", "not a folder name"),
        ("'.'", "not a folder name"),
        ("'..'", "not a folder name"),
        ('"a\\tb"', "control character"),
        ("null", "expected text, got NoneType"),
        ("x" * 201, "longer than 200 bytes"),
    ],
)
def test_a_name_must_be_one_folder_name(tmp_path, name, match):
    refused(write(tmp_path, f"name: {name}\n" + ONE), f"name: .*{match}")


@pytest.mark.parametrize("name", ["a\x00b", "a\nb", "a/b", "/abs", ".", "", ["a"], {"a": 1}])
def test_a_name_given_as_data_must_be_one_folder_name(name):
    with pytest.raises(ConfigError, match="name: "):
        parse_study({"name": name, "experiments": [{}]})


def test_a_safe_name_is_kept(tmp_path):
    assert plan_of(write(tmp_path, "name: my-study_2.v1\n" + ONE)).name == "my-study_2.v1"


def test_runners_of_the_wrong_shape_are_refused(tmp_path):
    for runners in ("0", "''", "[]", "false"):
        refused(write(tmp_path, TINY + f"runners: {runners}\nexperiments: [{{}}]\n"), "runners must map engine")
    assert plan_of(write(tmp_path, TINY + "runners: null\nexperiments: [{}]\n")).runs


@pytest.mark.parametrize("cycles", [0, -1])
def test_cycles_below_one_are_refused(tmp_path, cycles):
    with pytest.raises(ConfigError, match=f"--cycles: must be at least 1, got {cycles}"):
        plan_study(parse_study({"experiments": [{}]}), cycles=cycles)
    refused(write(tmp_path, TINY + f"study_execution: {{n_cycles: {cycles}}}\nexperiments: [{{}}]\n"), "n_cycles")


# --- size limits -------------------------------------------------------------------------------


def test_a_million_cycles_are_refused_before_planning(tmp_path):
    error = refused(
        write(tmp_path, TINY + "study_execution: {n_cycles: 1000000}\nexperiments: [{}]\n"), "1,000,000 runs"
    )
    assert "--max-runs N, $LLEM_MAX_RUNS or execution.max_runs" in str(error)


def test_a_hundred_million_experiment_product_is_counted_not_expanded():
    axes = {f"decoder.{k}": list(range(1, 101)) for k in ("top_k", "min_new_tokens", "num_beams")}
    spec = parse_study({"sweep": {**axes, "dataset.n_prompts": list(range(1, 101))}})
    with pytest.raises(ConfigError, match=r"100,000,000 runs \(100,000,000 experiments x 1 cycles\)"):
        plan_study(spec, cycles=1)


def test_a_million_value_axis_is_counted_not_expanded():
    spec = parse_study({"sweep": {"dataset.n_prompts": list(range(1, 10**6 + 1))}})
    with pytest.raises(ConfigError, match="1,000,000 experiments x 3 cycles"):
        plan_study(spec)


def test_group_mini_grids_and_engines_are_counted():
    spec = parse_study(
        {
            "engine": ["transformers", "vllm"],
            "sweep": {"dtype": ["float16", "bfloat16"], "g": [{"decoder.top_k": [1, 2, 3]}, {"decoder.top_p": 0.5}]},
        }
    )
    with pytest.raises(ConfigError, match=r"16 experiments"):  # 2 engines x 2 dtypes x (3 + 1) variants
        plan_study(spec, cycles=1, max_runs=15)
    assert len(plan_study(spec, cycles=1, max_runs=16).experiments) == 16


def test_a_huge_axis_in_a_file_stops_while_reading(tmp_path, monkeypatch):
    monkeypatch.setenv("LLEM_MAX_RUNS", "10")
    values = ", ".join(str(i) for i in range(1, 20_001))
    refused(
        write(tmp_path, TINY + f"sweep: {{dataset.n_prompts: [{values}]}}\n"), r"more than 10,000 values.*--max-runs"
    )


def test_the_run_limit_is_a_setting(tmp_path, monkeypatch):
    study = write(tmp_path, TINY + "sweep: {dataset.n_prompts: [1, 2, 3, 4]}\n")
    monkeypatch.setenv("LLEM_MAX_RUNS", "11")
    refused(study, "above the limit of 11")
    monkeypatch.setenv("LLEM_MAX_RUNS", "12")
    assert len(plan_of(study).runs) == 12
    monkeypatch.delenv("LLEM_MAX_RUNS")
    config = write(tmp_path, "execution: {max_runs: 5}\n", "config.yaml")
    monkeypatch.setenv("LLEM_USER_CONFIG", str(config))
    refused(study, "above the limit of 5")
    monkeypatch.setenv("LLEM_MAX_RUNS", "zero")
    refused(study, r"\$LLEM_MAX_RUNS='zero': expected a whole number")


# --- the override encoder: free-form mappings through Hydra's own composition -------------------


def composed(overrides: list[str]):
    with initialize_config_module(config_module="llem.conf", version_base="1.3"):
        return compose("study", overrides=overrides)


def test_free_form_keys_round_trip_through_hydra():
    max_memory = {"0": "20GiB", "1": "30GiB", "cpu": "64GiB"}
    passthrough = {"a.b": 1, "with space": "x", " lead": [1, {"k.k": None}], "true": True, "0": {"n": 1}, "x:y=z": 2.5}
    plan = plan_study(
        parse_study(
            {"transformers": {"max_memory": max_memory}, "passthrough_kwargs": passthrough, "experiments": [{}]}
        )
    )
    assert not plan.skipped, plan.skipped
    cfg = composed(plan.experiments[0].overrides)
    assert OmegaConf.to_container(cfg.transformers.max_memory) == max_memory
    assert OmegaConf.to_container(cfg.passthrough_kwargs) == passthrough


def test_compilation_config_keys_round_trip_through_hydra():
    compilation = {"level": 3, "cudagraph_capture_sizes": [1, 2], "pass_config": {"0": 1, "a b": {"c.d": "e"}}}
    plan = plan_study(
        parse_study({"engine": "vllm", "vllm": {"engine": {"compilation_config": compilation}}, "experiments": [{}]})
    )
    cfg = composed(plan.experiments[0].overrides)
    assert OmegaConf.to_container(cfg.vllm.engine.compilation_config) == compilation


@pytest.mark.parametrize("key", ["é", "it's", 'say "hi"', "#tag", "", "a b\u00a0c"])
def test_a_key_no_override_can_write_skips_its_experiment_with_the_key(key):
    plan = plan_study(parse_study({"passthrough_kwargs": {key: 1}, "experiments": [{}, {"dtype": "float16"}]}))
    assert len(plan.skipped) == 2
    assert all(f"key {key!r}" in s.reason and "Hydra's override grammar" in s.reason for s in plan.skipped)


# --- printing: markup, large plans, closed pipes -----------------------------------------------


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None, force_terminal=False), out


def test_user_text_with_markup_is_printed_as_written(tmp_path):
    text = 'name: "[red]x"\nmodel: llem-tiny\nexperiments: [{passthrough_kwargs: {tag: "[/red]"}}, {dtype: "[b]x"}]\n'
    plan = plan_of(write(tmp_path, text))
    console, out = plain_console()
    print_plan(plan, console)
    printed = out.getvalue()
    assert "study [red]x" in printed and "tag:'[/red]'" in printed and "'[b]x'" in printed


def test_the_final_panel_keeps_brackets():
    console, out = plain_console()
    run = {"status": "failed", "job_dir": "0000_x_c0", "error": "needs the 'vllm' package: pip install 'llem[vllm]'"}
    final_panel({"runs": [run], "counts": {"completed": 0}, "status": "completed"}, console)
    assert "pip install 'llem[vllm]'" in out.getvalue()


def test_a_large_plan_is_summarised_unless_all_is_asked():
    plan = plan_study(parse_study({"sweep": {"dataset.n_prompts": list(range(1, 201))}}), cycles=2)
    console, out = plain_console()
    print_plan(plan, console)
    summary = out.getvalue()
    assert summary.count("\n") < 1000 and "350 more runs not shown" in summary
    assert "195 more resolved configs not shown" in summary
    console, out = plain_console()
    print_plan(plan, console, show_all=True)
    assert out.getvalue().count("resolved config") == 200 and "not shown" not in out.getvalue()
    assert len(plan.runs) > SHOWN_RUNS


# --- the command line: one llem: line, exit 2, no traceback ------------------------------------


def llem(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llem.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


CLI_CASES = {
    "encoding": (b"model: \xff\xfe\n", [], "not UTF-8 text"),
    "yaml structure": (b"a: " + b"[" * 500 + b"]" * 500, [], "nested more than 64"),
    "duplicate key": (b"model: a\nmodel: b\n", [], "duplicate key 'model'"),
    "plain values": (b"model: 2024-01-01\n", [], "reads as a date"),
    "engine shape": (b"engine: {a: 1}\nexperiments: [{}]\n", [], "engine: expected an engine name"),
    "name": (b"name: ../x\nexperiments: [{}]\n", [], "name: '../x' contains a path separator"),
    "cycles flag": (ONE.encode(), ["--cycles", "0"], "--cycles: must be at least 1, got 0"),
    "negative cycles flag": (ONE.encode(), ["--cycles", "-1"], "--cycles: must be at least 1, got -1"),
    "size limit": (b"study_execution: {n_cycles: 1000000}\nexperiments: [{}]\n", [], "above the limit of 100,000"),
    "all invalid": (b"study_execution: {experiment_order: latin_square}\nexperiments: [{dtype: x}]\n", [], "invalid"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_the_cli_prints_one_llem_line_and_exits_2(tmp_path, case):
    content, flags, message = CLI_CASES[case]
    write(tmp_path, content)
    result = llem("plan", "study.yaml", *flags, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("llem: "), result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_fifo_on_the_cli_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "study.yaml")
    result = llem("plan", "study.yaml", cwd=tmp_path)
    assert (result.returncode, result.stderr.startswith("llem: "), result.stderr.count("\n")) == (2, True, 1)


def test_plan_json_into_a_closed_pipe_exits_quietly(tmp_path):
    # 40 experiments x 3 cycles: about 300 kB of JSON, far more than a pipe holds (64 kB), so the
    # writer is still writing when the reader goes, however fast or slow either side is.
    write(tmp_path, TINY + f"sweep: {{dataset.n_prompts: {list(range(1, 41))}}}\n")
    reader = subprocess.Popen(
        [sys.executable, "-m", "llem.cli", "plan", "study.yaml", "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout.readline() == b"{\n"
    reader.stdout.close()  # as `| head -1` does
    deadline = time.monotonic() + 300
    while reader.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert reader.wait() == 141
    assert reader.stderr.read() == b""


def test_plan_all_flag_and_max_runs_flag(tmp_path):
    write(tmp_path, TINY + "sweep: {dataset.n_prompts: [1, 2, 3, 4]}\n")
    result = llem("plan", "study.yaml", "--max-runs", "11", cwd=tmp_path)
    assert result.returncode == 2 and "above the limit of 11" in result.stderr
    result = llem("plan", "study.yaml", "--max-runs", "12", "--all", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "4 experiments x 3 cycles = 12 runs" in result.stdout


def test_read_yaml_gives_plain_data_for_valid_files():
    assert read_yaml(Path(__file__).parent / "studies" / "anchors.yaml")["sweep"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--timeout", "nan"], "--timeout: must be a finite number above 0, got nan"),
        (["--timeout", "inf"], "--timeout: must be a finite number above 0, got inf"),
        (["--timeout", "-1"], "--timeout: must be a finite number above 0, got -1"),
        (["--timeout", "0"], "--timeout: must be a finite number above 0, got 0"),
        (["--timeout", "soon"], "--timeout: expected a number, got 'soon'"),
        (["--cycles", "nan"], "--cycles: expected a whole number, got 'nan'"),
        (["--output", "/proc/llem-none"], "--output=/proc/llem-none: cannot create folders in"),
        (["--output", "study.yaml/sub"], "study.yaml is a file, not a folder"),
    ],
)
def test_run_flags_are_checked_before_anything_is_written(tmp_path, flags, message):
    write(tmp_path, ONE)
    result = llem("run", "study.yaml", *flags, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("llem: ") and message in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["study.yaml"]


def test_an_unusable_results_dir_in_the_user_config_is_one_line(tmp_path):
    write(tmp_path, ONE)
    (tmp_path / "uc.yaml").write_text("output:\n  results_dir: /proc/llem-none\n")
    env = {**os.environ, "LLEM_USER_CONFIG": str(tmp_path / "uc.yaml")}
    result = subprocess.run(
        [sys.executable, "-m", "llem.cli", "run", "study.yaml"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("llem: output.results_dir=/proc/llem-none/")


def test_every_line_of_an_error_of_several_issues_starts_with_llem(tmp_path):
    write(tmp_path, ONE)
    (tmp_path / "uc.yaml").write_text("execution:\n  max_runs: 0\n  unknown_key: 2\n")
    env = {**os.environ, "LLEM_USER_CONFIG": str(tmp_path / "uc.yaml")}
    for command in (["plan", "study.yaml"], ["run", "study.yaml"]):
        result = subprocess.run(
            [sys.executable, "-m", "llem.cli", *command], capture_output=True, text=True, cwd=tmp_path, env=env
        )
        lines = result.stderr.splitlines()
        assert result.returncode == 2 and len(lines) >= 2, result.stderr
        assert all(line.startswith("llem: ") for line in lines), result.stderr
        assert "uc.yaml: invalid user config" in lines[0] and "execution.unknown_key" in result.stderr


def test_plan_json_carries_the_notes_and_plan_takes_the_profile(tmp_path):
    write(tmp_path, TINY + "experiments: [{}, {}]\n")  # two identical experiments: a note
    plain = json.loads(llem("plan", "study.yaml", "--json", cwd=tmp_path).stdout)
    assert plain["n_runs"] == 3 and any("identical" in note for note in plain["notes"])
    for profile, runs in (("quick", 1), ("publication", 5)):
        result = llem("plan", "study.yaml", "--json", "--profile", profile, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["n_runs"] == runs
    refused_profile = llem("plan", "study.yaml", "--profile", "fast", cwd=tmp_path)
    assert refused_profile.returncode == 2 and "--profile: invalid choice" in refused_profile.stderr
