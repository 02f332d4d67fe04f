"""Damaged or foreign study folders: ``llem summarize`` and ``llem run --resume/--resume-dir`` end in
one ``llem:`` line naming the file (exit 2), and leave every file in the folder as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llem.errors import ConfigError
from llem.study.launch import RunOptions, study_folder
from llem.study.plan import StudyPlan

STUDY = "name: s\nmodel: llem-tiny\nexperiments: [{}]\n"
# manifest.json contents that are not a llem manifest, each with what the error says
DAMAGED_MANIFESTS = {
    "truncated": ("[", "not valid JSON"),
    "not an object": ("[1, 2]", "expected a JSON object, found list"),
    "runs not a list": ('{"study_design_hash": "abc", "runs": 5}', "no list of runs"),
    "no design hash": ('{"runs": []}', "no study_design_hash"),
    "run without status": ('{"study_design_hash": "abc", "runs": [{"job_dir": "x"}]}', "run 0 has no status"),
    "not UTF-8": (b"\xff\xfe{", "not valid JSON"),
}


def llem(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "llem.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def damaged_folder(folder: Path, manifest: str | bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_bytes(manifest.encode() if isinstance(manifest, str) else manifest)
    (folder / "study_plan.json").write_text('{"study_design_hash": "abc", "runs": []}')
    return folder


def assert_one_line_about(proc: subprocess.CompletedProcess, path: Path, message: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"llem: {path}") and message in proc.stderr, proc.stderr


@pytest.mark.parametrize("case", list(DAMAGED_MANIFESTS))
def test_summarize_and_resume_dir_refuse_a_damaged_manifest(tmp_path, case):
    content, message = DAMAGED_MANIFESTS[case]
    folder = damaged_folder(tmp_path / "study", content)
    (tmp_path / "s.yaml").write_text(STUDY)
    before = snapshot(folder)
    for command in (["summarize", str(folder)], ["run", "s.yaml", "--resume-dir", str(folder)]):
        proc = llem(*command, cwd=tmp_path)
        assert_one_line_about(proc, folder / "manifest.json", message)
        assert "damaged" in proc.stderr
        assert snapshot(folder) == before, f"{command[0]} changed the damaged folder"


@pytest.mark.parametrize(
    ("plan", "message"),
    [("{", "not valid JSON"), ("[]", "not a study plan"), ('{"runs": []}', "not a study plan"), (None, "missing")],
)
def test_resume_dir_refuses_a_damaged_study_plan_before_touching_the_folder(tmp_path, plan, message):
    folder = damaged_folder(tmp_path / "study", '{"study_design_hash": "abc", "runs": []}')
    if plan is None:
        (folder / "study_plan.json").unlink()
    else:
        (folder / "study_plan.json").write_text(plan)
    (tmp_path / "s.yaml").write_text(STUDY)
    before = snapshot(folder)
    proc = llem("run", "s.yaml", "--resume-dir", str(folder), cwd=tmp_path)
    assert_one_line_about(proc, folder / "study_plan.json", message)
    assert snapshot(folder) == before


def test_resume_skips_damaged_sibling_folders(tmp_path):
    """``--resume`` looks through every folder of the study: damaged ones are passed over, untouched."""
    root = tmp_path / "out"
    for name, (content, _) in DAMAGED_MANIFESTS.items():
        damaged_folder(root / name.replace(" ", "-"), content)
    unfinished = root / "z-unfinished"
    unfinished.mkdir()
    pending = {"status": "pending", "job_dir": "0000_x_c0"}
    (unfinished / "manifest.json").write_text(json.dumps({"study_design_hash": "h", "runs": [pending]}))
    before = snapshot(root)
    plan = StudyPlan("s", "h", [], [], [], 1, None, 0)  # type: ignore[arg-type]
    folder, resuming = study_folder(plan, RunOptions(resume=True, output=root), Path("s.yaml"))
    assert (folder, resuming) == (unfinished, True)
    (unfinished / "manifest.json").unlink()  # only damaged folders left: none to resume
    unfinished.rmdir()
    with pytest.raises(ConfigError, match="--resume: no unfinished study of s.yaml"):
        study_folder(plan, RunOptions(resume=True, output=root), Path("s.yaml"))
    del before["z-unfinished/manifest.json"]
    assert len(before) == 2 * len(DAMAGED_MANIFESTS)
    assert snapshot(root) == before


def test_a_damaged_status_file_fails_its_run_not_the_study(tmp_path):
    from llem.study.execute import _outcome

    (tmp_path / "status.json").write_text('{"status": "comp')
    status, error, headline = _outcome(tmp_path)
    assert status == "failed" and "status.json" in error and headline is None
    assert (tmp_path / "status.json").read_text() == '{"status": "comp'  # left as found
