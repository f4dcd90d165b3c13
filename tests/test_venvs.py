"""Worker types in their own Python environments (robotni/worktypes/environments.py): built from PEP 723 dependencies, or named.

The environments install a tiny pure-Python package from PyPI that Robotni does not depend on; each is built once
for the module (by `robotni venvs build`, then reused by the worker).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest

from robotni import config
from robotni.errors import DeclarationError, EnvNotReady
from robotni.worktypes import environments
from robotni.worktypes.environments import EnvSpec
from robotni.worktypes.registry import WorkerType, parse_type
from tests.stack import ROOT, Stack

PACKAGE = "tabulate"  # pure Python, one module; not in Robotni's environment (checked below)
OLD, NEW = "0.8.10", "0.9.0"
MISSING = "robotni-no-such-package-7f3a"  # not on PyPI
PROBE = """# /// script{header}
# [tool.robotni]
# description = "reports which tabulate it imports and whether Robotni's packages are visible"{tool}
# ///
import importlib.util, json, os, sys
try:
    import tabulate
    version = tabulate.__version__
except ImportError:
    version = None
visible = [name for name in ("robotni", "flask", "celery") if importlib.util.find_spec(name)]
result = {{"version": version, "prefix": sys.prefix, "isolated": sys.flags.isolated, "visible": visible}}
with open(os.environ["ROBOTNI_RESULT"], "w") as f:
    json.dump(result, f)
"""
TYPES = {  # name: (PEP 723 lines, [tool.robotni] lines)
    "tab_old": ([f'dependencies = ["{PACKAGE}=={OLD}"]'], []),
    "tab_new": (['requires-python = ">=3.11"', f'dependencies = ["{PACKAGE}=={NEW}"]'], []),
    "bare": (["dependencies = []"], []),
    "missing": ([f'dependencies = ["{MISSING}"]'], []),
    "named": ([], ['venv = "plain"']),
}


def _probe(header: list[str], tool: list[str]) -> str:
    return PROBE.format(header="".join(f"\n# {line}" for line in header), tool="".join(f"\n# {line}" for line in tool))


def _robotni(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-c", "from robotni.cli import main; main()", *args]
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _marks(env_stack: Stack) -> dict[Path, int]:
    return {
        path: path.stat().st_mtime_ns for path in (env_stack.data_dir / "envs").glob(f"*/{environments.READY_MARK}")
    }


@pytest.fixture(scope="module")
def env_stack(tmp_path_factory):
    """A env_stack whose types need environments, built by the command first; the worker then starts on them."""
    running = Stack(tmp_path_factory.mktemp("venvs"))
    for name, (header, tool) in TYPES.items():
        (running.workers_dir / f"{name}.py").write_text(_probe(header, tool))
    plain = running.data_dir / "venvs" / "plain"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(plain)], check=True)
    try:
        built = _robotni(running.env, "venvs", "build")
        running.build_output, running.marks = built.stdout + built.stderr, _marks(running)
        assert built.returncode == 1, running.build_output  # `missing` failed, the rest were built
        assert len(running.marks) == 3, running.build_output  # tab_old, tab_new, bare (named is made by hand)
        running.start_web()
        running.start_worker()
        yield running
    finally:
        running.stop()


def test_robotni_does_not_have_the_package():
    assert importlib.util.find_spec(PACKAGE) is None
    probe = subprocess.run([sys.executable, "-I", "-c", f"import {PACKAGE}"], capture_output=True)
    assert probe.returncode != 0 and b"ModuleNotFoundError" in probe.stderr


def test_two_versions_run_side_by_side_isolated_from_robotni(env_stack):
    old, new = env_stack.submit("tab_old")["id"], env_stack.submit("tab_new")["id"]
    old, new = env_stack.wait_for(old, timeout=60), env_stack.wait_for(new, timeout=60)
    assert old["status"] == new["status"] == "completed", (old, new)
    assert (old["result"]["version"], new["result"]["version"]) == (OLD, NEW)
    envs = env_stack.data_dir / "envs"
    assert Path(old["result"]["prefix"]).parent == Path(new["result"]["prefix"]).parent == envs
    assert old["result"]["prefix"] != new["result"]["prefix"]
    assert old["result"]["visible"] == new["result"]["visible"] == []
    assert old["result"]["isolated"] == 1


def test_empty_dependencies_still_get_an_environment_of_their_own(env_stack):
    job = env_stack.wait_for(env_stack.submit("bare")["id"], timeout=60)
    assert job["status"] == "completed", job
    assert job["result"]["version"] is None and job["result"]["visible"] == []
    assert Path(job["result"]["prefix"]).parent == env_stack.data_dir / "envs"


def test_a_named_venv_type_runs_with_that_venv(env_stack):
    job = env_stack.wait_for(env_stack.submit("named")["id"], timeout=60)
    assert job["status"] == "completed", job
    assert job["result"]["prefix"] == str(env_stack.data_dir / "venvs" / "plain")


def test_types_show_their_environment_and_whether_it_is_ready(env_stack):
    types = {t["name"]: t for t in env_stack.http.get(env_stack.api("/types")).json()}
    new = types["tab_new"]
    assert new["ready"] is True and new["error"] is None
    assert new["environment"]["kind"] == "dependencies"
    assert new["environment"]["dependencies"] == [f"{PACKAGE}=={NEW}"]
    assert new["environment"]["requires_python"] == ">=3.11"
    assert types["tab_old"]["environment"]["key"] != new["environment"]["key"]
    assert types["named"]["environment"] == {"kind": "venv", "venv": "plain"} and types["named"]["ready"]
    assert types["helloworld"]["environment"] == {"kind": "robotni"} and types["helloworld"]["ready"]
    assert types["missing"]["ready"] is False
    assert MISSING in types["missing"]["error"] and "build failed" in types["missing"]["error"]


def test_a_failed_build_fails_its_jobs_at_once_and_spares_the_others(env_stack):
    assert f"missing: {environments.env_key([MISSING])[:12]} build failed" in env_stack.build_output
    failed = env_stack.wait_for(env_stack.submit("missing")["id"])
    assert failed["status"] == "failed" and failed["exit_code"] is None
    assert failed["error"].startswith("cannot start: the environment of type 'missing' is not ready")
    assert MISSING in failed["error"]
    took = datetime.fromisoformat(failed["finished_at"]) - datetime.fromisoformat(failed["started_at"])
    assert took.total_seconds() < 2  # no build, no process: it never started
    assert env_stack.wait_for(env_stack.submit("helloworld")["id"])["status"] == "completed"


def test_the_worker_reuses_what_the_command_built(env_stack):
    assert _marks(env_stack) == env_stack.marks
    log = env_stack.processes[-1].log()
    assert "tab_new: reused" in log and "missing failed" in log


def test_a_job_cannot_choose_a_venv_for_a_type_with_its_own_environment(env_stack):
    response = env_stack.http.post(env_stack.api("/jobs"), json={"type": "tab_new", "venv": "plain"})
    assert response.status_code == 422, response.text
    assert "own environment" in response.json()["errors"]["json"]["venv"][0]


# --- declarations and building, without a env_stack -------------------------------------------------------------


def _declare(tmp_path: Path, header: str, tool: str = "") -> WorkerType:
    script = tmp_path / "probe.py"
    script.write_text(_probe([header] if header else [], [tool] if tool else []))
    return parse_type(script)


@pytest.mark.parametrize(
    ("header", "tool", "reason"),
    [
        ('dependencies = "tabulate"', "", "list of strings"),
        ("dependencies = [1]", "", "list of strings"),
        ("dependencies = { tabulate = '1' }", "", "list of strings"),
        ('dependencies = ["--index-url=http://example.invalid"]', "", "dependencies: "),
        ('dependencies = ["tabulate=="]', "", "dependencies: "),
        ("requires-python = 3.11", "", "requires-python must be a string"),
        ('requires-python = "3.11+"', "", "requires-python: "),
        ("", 'venv = "../plain"', "plain name"),
        ("", 'venv = "/usr"', "plain name"),
        ("", 'venv = "a/b"', "plain name"),
        ("", "venv = 3", "plain name"),
        ('dependencies = ["tabulate"]', 'venv = "plain"', "or venv"),
    ],
)
def test_bad_environment_declarations_are_refused(tmp_path, header, tool, reason):
    with pytest.raises(DeclarationError, match=reason.replace("+", r"\+")):
        _declare(tmp_path, header, tool)


def test_dependencies_are_normalized_so_equal_sets_share_an_environment(tmp_path):
    wtype = _declare(tmp_path, 'dependencies = ["tabulate >= 0.9", "six", "six"]')
    assert wtype.env.dependencies == ("six", "tabulate>=0.9")
    assert wtype.has_own_environment
    assert environments.env_key(["tabulate>=0.9", "six"]) == environments.env_key(wtype.env.dependencies)
    assert environments.env_key(["six"]) != environments.env_key(wtype.env.dependencies)
    assert _declare(tmp_path, "").env.dependencies is None  # no declaration: Robotni's interpreter, as before


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOTNI_DATA_DIR", str(tmp_path / "var"))
    return config.load_settings()


def test_requires_python_that_excludes_this_interpreter_is_reported_not_built(settings):
    wtype = WorkerType("future", None, env=EnvSpec(dependencies=(), requires_python=">=4"))
    assert environments.build_types([(wtype.name, wtype.env)], settings) == []
    current = environments.status(wtype.env, settings)
    assert not current.ready and "requires-python '>=4' excludes" in current.error
    with pytest.raises(EnvNotReady, match="excludes"):
        environments.interpreter(wtype.name, wtype.env, settings)


def test_an_unbuilt_environment_says_how_to_build_it(settings):
    wtype = WorkerType("later", None, env=EnvSpec(dependencies=("six",)))
    with pytest.raises(EnvNotReady, match="robotni venvs build"):
        environments.interpreter(wtype.name, wtype.env, settings)


def test_two_builders_at_once_build_once(settings):
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(environments.build((), settings, "pip"))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.cached for r in results) == [False, True] and all(r.ok for r in results)


def test_a_half_built_environment_is_built_again(settings):
    leftover = settings.built_envs_dir / environments.env_key(())
    (leftover / "bin").mkdir(parents=True)
    (leftover / "junk").write_text("from a build that died")
    result = environments.build((), settings, "pip")
    assert result.ok and not result.cached
    assert not (leftover / "junk").exists() and (leftover / environments.READY_MARK).is_file()


def test_a_build_over_its_time_is_stopped_and_recorded(settings, monkeypatch):
    monkeypatch.setenv("ROBOTNI_ENV_BUILD_TIMEOUT", "0.001")
    result = environments.build(("six",), config.load_settings(), "pip")
    assert not result.ok and "timed out" in result.error
    assert not (settings.built_envs_dir / result.key).exists()
    wtype = WorkerType("slow", None, env=EnvSpec(dependencies=("six",)))
    with pytest.raises(EnvNotReady, match="timed out"):
        environments.interpreter(wtype.name, wtype.env, settings)


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_each_installer_builds_an_isolated_environment(settings, installer):
    if installer == "uv" and environments.pick_installer() != "uv":
        pytest.skip("uv is not on PATH")
    result = environments.build((f"{PACKAGE}=={OLD}",), settings, installer)
    assert result.ok, result.error
    python = settings.built_envs_dir / result.key / "bin" / "python"
    code = f"import {PACKAGE}, importlib.util; print({PACKAGE}.__version__, importlib.util.find_spec('flask'))"
    probe = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True, check=True)
    assert probe.stdout.split() == [OLD, "None"]
