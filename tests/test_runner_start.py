"""The runner when a job's process cannot be started at all: the job fails saying why, the worker goes on.

Issue 13: the OSError branch of run() built its Outcome with an argument the class no longer takes, so a job
whose interpreter could not be executed raised TypeError in the worker instead of ending `failed`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from robotni.runner import spawn
from robotni.runner.run import RunSpec, run
from robotni.status import JobStatus

# Linux refuses one argument over MAX_ARG_STRLEN (32 pages) with E2BIG, whichever program is executed.
OVER_MAX_ARG_STRLEN = 33 * 4096


def spec_for(tmp_path: Path, argv: list[str]) -> RunSpec:
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "script.py"
    script.write_text("print('ran')\n")
    # argv as the worker builds it, but past script_argv's check: the interpreter changed after the submit.
    return RunSpec(argv=[*argv, str(script)], params={}, workdir=tmp_path / "job", soft_limit=10, hard_limit=12)


def not_executable(tmp_path: Path) -> str:
    path = tmp_path / "python"
    path.write_bytes(b"\x7fELF not really")
    path.chmod(0o644)
    return str(path)


INTERPRETERS = {
    "missing": lambda tmp_path: str(tmp_path / "no-such-python"),
    "not-executable": not_executable,
    "a-folder": lambda tmp_path: str(tmp_path),
}


@pytest.fixture(params=["util-linux", "preexec"])
def launcher(request, monkeypatch):
    """Both ways a job starts: through setpriv/prlimit where installed (the default), or Popen's own exec."""
    if request.param == "preexec":
        monkeypatch.setattr(spawn.confinement, "launcher", lambda rlimits, user: None)
    elif spawn.confinement.launcher([], None) is None:
        pytest.skip("util-linux's setpriv and prlimit are not installed")
    return request.param


@pytest.mark.parametrize("kind", sorted(INTERPRETERS))
def test_an_interpreter_that_cannot_be_executed_fails_the_job_saying_why(tmp_path, launcher, kind):
    interpreter = INTERPRETERS[kind](tmp_path)
    spec = spec_for(tmp_path, [interpreter, "-I", "-u"])
    outcome = run(spec)
    assert outcome.status is JobStatus.FAILED
    assert outcome.error.startswith(f"cannot start {interpreter}"), outcome.error
    reason = outcome.error.removeprefix(f"cannot start {interpreter}").lower()
    assert any(word in reason for word in ("no such file", "permission denied", "is a directory")), outcome.error
    assert outcome.result is None and not outcome.wants_retry


def test_an_argument_the_kernel_refuses_fails_the_job_saying_why(tmp_path, launcher):
    """E2BIG comes from exec itself, so Popen raises OSError with or without a launcher in front."""
    spec = spec_for(tmp_path, [sys.executable, "-I", "-u", "-c", "x" * OVER_MAX_ARG_STRLEN])
    outcome = run(spec)
    assert outcome.status is JobStatus.FAILED
    assert outcome.error.startswith(f"cannot start {sys.executable}"), outcome.error[:300]
    assert "argument list too long" in outcome.error.lower(), outcome.error[:300]
    assert outcome.exit_code is None


def test_the_runner_runs_the_next_job_after_one_that_could_not_start(tmp_path, launcher):
    failed = run(spec_for(tmp_path / "first", [str(tmp_path / "gone"), "-I", "-u"]))
    assert failed.status is JobStatus.FAILED
    ok = spec_for(tmp_path / "second", [sys.executable, "-I", "-u"])
    outcome = run(ok)
    assert outcome.status is JobStatus.COMPLETED, outcome.error
    assert ok.log_path.read_text() == "ran\n"


def test_a_nul_in_an_argument_fails_the_job_saying_why(tmp_path, launcher):
    """Popen refuses a NUL in argv or env with ValueError, not OSError: that too is a job that cannot start."""
    spec = spec_for(tmp_path, [sys.executable, "-I", "-u"])
    outcome = run(RunSpec(**{**vars(spec), "argv": [*spec.argv, "a\0b"]}))
    assert outcome.status is JobStatus.FAILED
    assert outcome.error.startswith(f"cannot start {sys.executable}") and "null byte" in outcome.error, outcome.error
