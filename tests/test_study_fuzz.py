"""Property-based fuzzing of the study loader: whatever the file holds, ``llem plan`` gives a plan or
llem's own error, never another exception and never a hang.

Each example goes through the entry point ``llem plan FILE`` uses (:func:`llem.study.launch.build_plan`),
in-process, and the plan is then printed (plain console) and serialised (``--json``) as the command
would. Files are drawn three ways: random YAML structures made of the schema's keys and values of
every type, random bytes, and mutations of the valid study examples in tests/studies/.

The suite runs 150 examples per strategy. For the long run, set ``LLEM_FUZZ_EXAMPLES``:

    LLEM_FUZZ_EXAMPLES=3000 python -m pytest -q tests/test_study_fuzz.py

Work per example is bounded by the run limit (``LLEM_MAX_RUNS`` is set low here), so no example can
plan for long; ``deadline=None`` keeps a loaded machine from failing an example for being slow, and
an alarm of :data:`HANG_LIMIT_S` fails one that hangs.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from llem.config.fields import field_types
from llem.config.load import load_experiment, with_unset_sections
from llem.config.schema import ExperimentConfig
from llem.errors import LlemError
from llem.study.encode import encode_mapping, leaves
from llem.study.launch import RunOptions, build_plan
from llem.study.report import print_plan
from llem.study.spec import STUDY_KEYS

STUDIES = Path(__file__).parent / "studies"
EXAMPLES = int(os.environ.get("LLEM_FUZZ_EXAMPLES", "150"))
HANG_LIMIT_S = 120  # one file plans in well under a second; this only catches a hang
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# Keys a study may hold, what the schema names, and near misses of both.
TOP_KEYS = sorted(set(field_types(ExperimentConfig)) | set(STUDY_KEYS) | {"pytorch"})


def _schema_paths() -> list[str]:
    """Every dotted field path of each engine's default experiment."""
    paths: set[str] = set()
    for engine in ("transformers", "vllm", "tensorrt"):
        paths |= {path for path, _ in leaves(with_unset_sections(load_experiment({"engine": engine})))}
    return sorted(paths)


SCHEMA_PATHS = _schema_paths()
ODD_KEYS = ["swep", "engin", "backend", "", "0", "a b", "[/red]", "é", "..", "~", "a.b.c", "<<", "null", "1.5"]
WORDS = [
    "float16", "bfloat16", "float32", "transformers", "vllm", "tensorrt", "pytorch", "llem-tiny", "builtin",
    "synthetic", "jsonl", "aienergyscore", "latin_square", "shuffle", "interleave", "reverse", "sequential",
    "deterministic", "greedy", "auto", "null", "docker", "local", "process", "inline", "docker:img", "[/red]",
    "[bold]x", "../x", "/abs", "base-experiment.yaml", "missing.yaml", ".", "/dev/null", "/proc/self/status",
    "${oc.env:HOME}", "a,b", "x=y", "'", '"', "\\", "1e400", "nan", "\t", "\u00e9\u4e2d", "",
]  # fmt: skip

keys = st.sampled_from(TOP_KEYS + SCHEMA_PATHS + ODD_KEYS) | st.text(max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, 2, 3, 10**6, 10**8])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(WORDS)
    | st.text(max_size=12)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
axis_values = st.lists(scalars, min_size=0, max_size=5) | st.lists(
    st.dictionaries(keys, values, max_size=3), max_size=3
)
studies = st.fixed_dictionaries(
    {},
    optional={
        "name": values,
        "model": st.sampled_from(["llem-tiny", "[/red]", "org/name", ""]) | values,
        "engine": st.sampled_from(["transformers", "vllm", ["transformers", "vllm"], "pytorch"]) | values,
        "base": st.sampled_from(["base-experiment.yaml", "missing.yaml", ".", "/dev/null"]) | values,
        "sweep": st.dictionaries(keys, axis_values, max_size=4) | values,
        "experiments": st.lists(st.dictionaries(keys, values, max_size=4), max_size=4) | values,
        "study_execution": st.dictionaries(
            st.sampled_from(["n_cycles", "experiment_order", "shuffle_seed", "experiment_gap_seconds", "x"]),
            values,
            max_size=3,
        )
        | values,
        "runners": st.dictionaries(st.sampled_from(["transformers", "vllm", "pytorch", "x"]), values) | values,
        "dtype": values,
        "dataset": values,
        "decoder": values,
        "transformers": values,
        "passthrough_kwargs": st.dictionaries(keys, values, max_size=3) | values,
    },
).map(lambda study: {**study, **({} if "sweep" in study or "experiments" in study else {"experiments": [{}]})})

EXAMPLE_TEXTS = sorted(p.read_text(encoding="utf-8") for p in STUDIES.glob("*.yaml"))
JUNK = [":", "[", "]", "{", "}", "&a", "*a", "!!binary ", "!!set ", "<<: ", "- ", "? ", "|", ">", "#", "'", '"', "\t"]


@st.composite
def mutated_examples(draw) -> bytes:
    """A valid example with a few edits: lines dropped, doubled or swapped, junk or bytes inserted."""
    lines = draw(st.sampled_from(EXAMPLE_TEXTS)).splitlines(keepends=True)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not lines:
            break
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        edit = draw(st.sampled_from(["drop", "double", "swap", "junk", "text", "indent", "number"]))
        if edit == "drop":
            del lines[i]
        elif edit == "double":
            lines.insert(i, lines[i])
        elif edit == "swap":
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif edit == "indent":
            lines[i] = draw(st.sampled_from(["", "  ", "    ", "\t"])) + lines[i].lstrip()
        elif edit == "number":
            lines[i] = lines[i].replace("1", draw(st.sampled_from(["0", "-1", "1e9", "1000000", ".nan", "true"])))
        else:
            piece = draw(st.sampled_from(JUNK) | st.text(max_size=6)) if edit == "junk" else draw(st.text(max_size=10))
            at = draw(st.integers(min_value=0, max_value=len(lines[i])))
            lines[i] = lines[i][:at] + piece + lines[i][at:]
    data = "".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + draw(st.binary(max_size=4)) + data[at:]
    return data


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """A folder holding the study file under test and a valid base file next to it; a small run
    limit and no user config for the whole module."""
    saved = {k: os.environ.get(k) for k in ("LLEM_MAX_RUNS", "LLEM_USER_CONFIG")}
    with tempfile.TemporaryDirectory() as folder:
        os.environ["LLEM_MAX_RUNS"] = "300"
        os.environ["LLEM_USER_CONFIG"] = str(Path(folder) / "no-user-config.yaml")
        shutil.copy(STUDIES / "base-experiment.yaml", folder)
        try:
            yield Path(folder)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def plan_or_llem_error(path: Path, data: bytes) -> None:
    """What ``llem plan FILE`` and ``llem plan FILE --json`` do, in-process: any exception but
    :class:`LlemError` fails the example."""
    path.write_bytes(data)
    previous = signal.signal(signal.SIGALRM, _hang)
    signal.alarm(HANG_LIMIT_S)
    try:
        try:
            plan, _, _ = build_plan(path, RunOptions())
        except LlemError as err:
            assert str(err).strip(), "an error must say what is wrong"
            return
        console = Console(file=io.StringIO(), width=120, color_system=None)
        print_plan(plan, console)
        json.dumps(plan.to_json(), allow_nan=False)  # what --json prints holds no NaN
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert plan.runs and len(plan.runs) <= 300


def _hang(signum: int, frame: object) -> None:
    raise TimeoutError(f"one study file took over {HANG_LIMIT_S} s to plan: a hang")


def dump(study: object) -> bytes:
    return yaml.safe_dump(study, allow_unicode=True, sort_keys=False).encode("utf-8", "surrogatepass")


@FUZZ
@given(study=studies)
def test_random_structures_of_schema_keys(workdir, study):
    plan_or_llem_error(workdir / "study.yaml", dump(study))


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes(workdir, data):
    plan_or_llem_error(workdir / "study.yaml", data)


@FUZZ
@given(data=mutated_examples())
def test_mutated_examples(workdir, data):
    plan_or_llem_error(workdir / "study.yaml", data)


@FUZZ
@given(study=studies, base=st.binary(max_size=200) | studies.map(dump))
def test_random_base_files(workdir, study, base):
    (workdir / "fuzz-base.yaml").write_bytes(base)
    plan_or_llem_error(workdir / "study.yaml", dump({**study, "base": "fuzz-base.yaml"}))


def applied(overrides: list[str]) -> dict:
    """The mapping Hydra builds from ``++path=value`` overrides: each parsed by Hydra's own parser
    and set at its dotted path, as ``OmegaConf.update`` does."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    root: dict = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        *parents, leaf = override.key_or_group.split(".")
        node = root
        for part in parents:
            node = node.setdefault(part, {})
        value = override.value()
        node[leaf] = {**node[leaf], **value} if isinstance(node.get(leaf), dict) and isinstance(value, dict) else value
    return root


free_form_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(
    mapping=st.dictionaries(
        st.text(max_size=8) | st.sampled_from(["0", "1", "true", "a.b", "x y", " z"]), free_form_values
    )
)
def test_free_form_mappings_round_trip_or_name_the_key(mapping):
    """Any mapping is either written exactly (read back by Hydra's parser) or refused naming a key."""
    try:
        overrides = encode_mapping("passthrough_kwargs", mapping)
    except LlemError as err:
        assert "key" in str(err) and "Hydra's override grammar" in str(err)
        return
    assert all(o.startswith("++passthrough_kwargs") for o in overrides)
    assert applied(overrides) == {"passthrough_kwargs": mapping}
