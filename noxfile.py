"""Project sessions: `nox -s tests`, `nox -s lint`, `nox -s bench`, `nox -s slurm`, `nox -s vllm`.

Sessions run in the environment that invokes nox (install it first: see README), so the CPU
build of torch installed there is the one tested; nox never downloads a CUDA build.
"""

from __future__ import annotations

import importlib.util

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "none"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (GPU-marked tests skip without CUDA; the Slurm test runs where Slurm is
    installed and nox runs as root, or installs it first with LLEM_TEST_SLURM=1, as CI does)."""
    session.run("python", "-m", "pytest", "-q", "--durations=25", *session.posargs)  # the slowest, to keep CI short


@nox.session
def slurm(session: nox.Session) -> None:
    """Only the Slurm tests, on a single-node cluster they start (root; installs Slurm when missing)."""
    session.run("python", "-m", "pytest", "-q", "tests/test_slurm.py", *session.posargs, env={"LLEM_TEST_SLURM": "1"})


@nox.session
def vllm(session: nox.Session) -> None:
    """Only the vLLM tests (the engine for real, its contract with the installed vLLM, the end-to-end runs);
    they skip, with the reason, where vLLM is not installed."""
    session.run("python", "-m", "pytest", "-q", "-m", "vllm", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and import order."""
    session.run("ruff", "check", "src", "tests", "noxfile.py", "benchmarks")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (not tests), each printing its figure and goal: `llem plan` of a 10,000-run study,
    and planning a 10,000-experiment one; llem's throughput against a bare generate loop in one
    process; a one-run study through the process runner (throughput and fixed per-job overhead); the
    telemetry sampler's CPU cost; the report of a 200-experiment x 3-cycle study (build time and file
    size); llem's vLLM engine against a bare ``LLM.generate`` and against Transformers (where vLLM is
    installed). Extra arguments (e.g. ``-- --model llem-tiny --rounds 3``) go to the throughput benchmarks."""
    session.run("python", "benchmarks/plan_large_study.py")
    session.run("python", "benchmarks/throughput_vs_bare.py", *session.posargs)
    session.run("python", "benchmarks/process_runner.py", *session.posargs)
    session.run("python", "benchmarks/telemetry_overhead.py")
    session.run("python", "benchmarks/report_large_study.py")
    if importlib.util.find_spec("vllm") is None:
        session.log("vllm_vs_bare.py skipped: vLLM is not installed (README, section vLLM)")
    else:
        session.run("python", "benchmarks/vllm_vs_bare.py", *session.posargs)
