"""The study grammar on every example of the reference, shape errors, orders and the encoder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from llem.errors import ConfigError
from llem.study.encode import encode_override
from llem.study.order import plan_runs, williams_rows
from llem.study.plan import plan_study
from llem.study.spec import ExperimentOrder, is_study, parse_study, read_yaml

STUDIES = Path(__file__).parent / "studies"

# (file, experiments, runs with the file's own or the default 3 cycles)
EXAMPLES = [
    ("dtype_sweep", 2, 6),
    ("dtype_n_sweep", 4, 12),
    ("batch_size_sweep", 4, 12),
    ("kv_cache_sweep", 6, 18),
    ("dataset_size_sweep", 3, 9),
    ("compare_engines", 2, 6),
    ("base_inheritance", 3, 9),
    ("mixed_study", 3, 9),
    ("compile_sweep", 6, 18),
    ("baseline_variant", 3, 9),
    ("mini_grid", 4, 12),
    ("cross_section", 2, 6),
    ("anchors", 4, 12),
    ("groups_crossed", 12, 36),
    ("multi_engine", 10, 30),
]


def plan_file(name: str, **kwargs):
    path = STUDIES / f"{name}.yaml"
    return plan_study(parse_study(read_yaml(path), path), **kwargs)


def plan_data(data: dict, **kwargs):
    return plan_study(parse_study(data), **kwargs)


@pytest.mark.parametrize(("name", "n_experiments", "n_runs"), EXAMPLES)
def test_reference_examples_plan_to_their_counts(name, n_experiments, n_runs):
    plan = plan_file(name)
    assert (len(plan.experiments), len(plan.runs), plan.skipped) == (n_experiments, n_runs, [])


@pytest.mark.parametrize("name", ["experiment_minimal", "experiment_fuller", "experiment_vllm"])
def test_experiment_files_are_not_studies(name):
    assert not is_study(read_yaml(STUDIES / f"{name}.yaml"))


def test_scoped_axes_give_each_engine_its_own_grid():
    plan = plan_file("multi_engine")
    by_engine = Counter(e.config.engine.value for e in plan.experiments)
    assert by_engine == {"transformers": 6, "vllm": 4}
    assert {e.config.vllm.engine.max_num_seqs for e in plan.experiments if e.config.vllm} == {64, 256}


def test_two_segment_and_three_segment_paths():
    assert {e.config.transformers.batch_size for e in plan_file("batch_size_sweep").experiments} == {1, 2, 4, 8}
    kv = {
        (e.config.vllm.engine.block_size, e.config.vllm.engine.kv_cache_dtype.value)
        for e in plan_file("kv_cache_sweep").experiments
    }
    assert kv == {(b, d) for b in (8, 16, 32) for d in ("auto", "fp8")}


def test_explicit_entries_merge_deeply_and_follow_the_sweep():
    plan = plan_data(
        {
            "model": "m",
            "dataset": {"n_prompts": 50},
            "sweep": {"dtype": ["float16"]},
            "experiments": [{"dataset": {"order": "shuffled"}}],
        }
    )
    assert [e.origin for e in plan.experiments] == ["sweep", "experiments[0]"]
    explicit = plan.experiments[1].config.dataset
    assert (explicit.order.value, explicit.n_prompts) == ("shuffled", 50)


def test_base_is_relative_and_stripped():
    plan = plan_file("base_inheritance")
    config = plan.experiments[0].config
    assert plan.name == "dtype-sweep" and config.model == "gpt2" and config.dataset.order.value == "grouped"


def test_group_variants_mini_grid_and_cross_section():
    caching = [e.config.transformers for e in plan_file("mini_grid").experiments]
    assert [c.cache_implementation and c.cache_implementation.value for c in caching] == [
        None,
        "static",
        "offloaded_static",
        "sliding_window",
    ]
    beams = plan_file("cross_section").experiments[1].config
    assert beams.transformers.num_beams == 4 and beams.decoder.do_sample is False


def test_anchor_merge_keys_resolve():
    quants = [e.config.tensorrt.quant for e in plan_file("anchors").experiments]
    assert quants[0] is None
    assert [(q.quant_algo, q.kv_cache_quant_algo) for q in quants[1:]] == [
        ("W8A16", None),
        ("W8A16", "INT8"),
        ("W4A16_AWQ", None),
    ]


def test_invalid_combinations_are_skipped_with_reasons():
    plan = plan_data({"model": "m", "sweep": {"dtype": ["float32", "float16"], "engine": ["tensorrt"]}})
    assert len(plan.experiments) == 1 and len(plan.skipped) == 1
    assert "tensorrt does not run float32" in plan.skipped[0].reason


def test_identical_experiments_run_once_with_a_note():
    plan = plan_data({"model": "m", "sweep": {"dtype": ["float16"]}, "experiments": [{"dtype": "float16"}]})
    assert len(plan.experiments) == 1 and "identical" in plan.notes[0]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sweep": {"dtype": "float16"}}, "sweep.dtype: expected a list"),
        ({"sweep": {"dtype": []}}, "sweep.dtype: the list is empty"),
        ({"sweep": {}}, "sweep is empty"),
        ({"sweep": {"dtype": [{"a": 1}, "x"]}}, "mixes mappings and values"),
        ({"sweep": {"dtype": ["float16"]}, "study_exec": {}}, "did you mean study_execution"),
        ({"sweep": {"dtype": ["float16"]}, "backend": "vllm"}, "'backend' was renamed: use engine"),
        ({"engine": "transformers", "sweep": {"vllm.engine.block_size": [8]}}, "not in the study's engines"),
        ({"sweep": {"dtype": ["float16"], "dtype.group": [{"dtype": "float32"}]}}, "set twice"),
        ({"sweep": {"pytorch.batch_size": [1], "transformers.batch_size": [{}]}}, "must not equal an axis key"),
        ({"experiments": "x"}, "experiments must be a non-empty list"),
        ({"sweep": {"dtype": ["float16"]}, "study_execution": {"n_cycles": 0}}, "n_cycles must be at least 1"),
        ({"sweep": {"dtype": ["float16"]}, "study_execution": {"experiment_order": "random"}}, "allowed values"),
    ],
)
def test_shape_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        plan_data(data)
    assert message in str(info.value)


def test_engines_inferred_from_scoped_keys():
    plan = plan_data({"model": "m", "sweep": {"vllm.engine.max_num_seqs": [8, 16]}})
    assert {e.config.engine.value for e in plan.experiments} == {"vllm"}


def test_design_hash_ignores_cycles_and_order():
    a = plan_file("dtype_sweep", cycles=2, order=ExperimentOrder.sequential)
    b = plan_file("dtype_sweep", cycles=5)
    assert a.design_hash == b.design_hash and len(b.runs) == 10


def test_shuffle_is_reproducible_and_seedable():
    first = [r.experiment for r in plan_file("groups_crossed").runs]
    again = [r.experiment for r in plan_file("groups_crossed").runs]
    assert first == again and first != sorted(first)
    seeded = plan_data(
        {"model": "m", "sweep": {"dtype": ["float16", "bfloat16", "float32"]}, "study_execution": {"shuffle_seed": 5}}
    )
    assert seeded.shuffle_seed == 5


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (ExperimentOrder.sequential, "AAABBB"),
        (ExperimentOrder.interleave, "ABABAB"),
        (ExperimentOrder.reverse, "ABBAAB"),
        (ExperimentOrder.latin_square, "ABBAAB"),
    ],
)
def test_orders_of_the_reference(order, expected):
    assert "".join("AB"[r.experiment] for r in plan_runs(2, 3, order, seed=0)) == expected


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7])
def test_williams_design_is_balanced(n):
    rows = williams_rows(n)
    for position in range(n):
        assert Counter(row[position] for row in rows) == Counter({t: len(rows) // n for t in range(n)})
    pairs = Counter((row[i], row[i + 1]) for row in rows for i in range(n - 1))
    assert len(pairs) == n * (n - 1) and len(set(pairs.values())) == 1


def test_latin_square_warns_on_partial_blocks():
    plan = plan_data(
        {"model": "m", "sweep": {"dtype": ["float16", "bfloat16", "float32"]}},
        cycles=4,
        order=ExperimentOrder.latin_square,
    )
    assert any("not a multiple" in note for note in plan.notes)


AWKWARD = [
    "it's",
    "a,b=c",
    "${oc.env:HOME}",
    "~tilde",
    "ünïcødé ✓",
    "back\\slash",
    "trail\\",
    "\\${x}",
    "null",
    "1.0",
    "",
    "[x]",
]


@pytest.mark.parametrize("value", [*AWKWARD, 3, -2.5, 1e-12, True, None, [1, "a,b", None], {"k": "v'w", "n": [1, 2]}])
def test_encoder_round_trips_through_hydra(value):
    override = OverridesParser.create().parse_override(encode_override("field", value))
    resolved = OmegaConf.to_container(OmegaConf.create({"field": override.value()}), resolve=True)["field"]
    assert resolved == value and type(resolved) is type(value)


def test_plan_json_shape():
    out = plan_file("dtype_sweep").to_json()
    assert set(out) == {"study_name", "study_design_hash", "n_experiments", "n_runs", "runs", "skipped", "notes"}
    run = out["runs"][0]
    assert set(run) == {"position", "cycle", "experiment_id", "engine", "overrides", "config"}
    assert run["overrides"][0] == "engine=transformers" and run["config"]["model"] == "gpt2"


def test_ten_thousand_experiments_plan():
    axes = {
        "dtype": ["float16", "bfloat16"],
        "transformers.batch_size": list(range(1, 51)),
        "dataset.n_prompts": list(range(1, 101)),
    }
    plan = plan_data({"model": "m", "sweep": axes}, cycles=1)
    assert len(plan.experiments) == 10_000
