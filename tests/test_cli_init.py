"""`robotni init` and the project template it writes; the plan `robotni start` runs (tests/test_wheel.py runs it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from robotni import config
from robotni.cli import main, processes

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "robotni" / "project_template"
# Lines of the template's .env that show a default: `# ROBOTNI_NAME=value`.
DEFAULT_LINE = re.compile(r"^# (ROBOTNI_[A-Z_]+)=(.+)$", re.MULTILINE)


def shipped_workers() -> list[Path]:
    """The repository's example types: those git tracks, so that a type of one's own saved in workers/ (the
    README's greet.py) is no drift; every *.py there outside a git checkout."""
    listed = subprocess.run(["git", "ls-files", "-z", "workers/*.py"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        return list((ROOT / "workers").glob("*.py"))
    return [ROOT / name for name in listed.stdout.split("\0") if name]


def test_template_is_the_repository_own_workers_and_procfile():
    """The repository's workers/*.py and Procfile are the source: the packaged copies must not drift from them.
    (Two copies: a wheel ships only what is inside the package, and workers/ is where a checkout's stack and a
    developer's own types live, which a link into the package would ship with the next wheel.)"""
    shipped = shipped_workers()
    assert sorted(p.name for p in (TEMPLATE / "workers").glob("*.py")) == sorted(p.name for p in shipped)
    for script in shipped:
        assert (TEMPLATE / "workers" / script.name).read_bytes() == script.read_bytes(), script.name
    assert (TEMPLATE / "Procfile").read_bytes() == (ROOT / "Procfile").read_bytes()


def robotni(folder: Path, *args: str, **settings: str) -> subprocess.CompletedProcess:
    """The `robotni` command run in folder, with none of the suite's ROBOTNI_* settings but these."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTNI_")} | settings
    argv = [sys.executable, "-c", "from robotni.cli import main; main()", *args]
    return subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=60)


def test_env_template_shows_the_defaults(monkeypatch, tmp_path):
    """Uncommenting every `# ROBOTNI_X=value` line of the template's .env changes no setting."""
    for name in [name for name in os.environ if name.startswith("ROBOTNI_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    defaults = asdict(config.load_settings())
    shown = dict(DEFAULT_LINE.findall((TEMPLATE / ".env").read_text()))
    assert {"ROBOTNI_DATA_DIR", "ROBOTNI_WORKERS_DIR", "ROBOTNI_BIND", "ROBOTNI_BROKER_URL"} <= set(shown)
    for name, value in shown.items():
        monkeypatch.setenv(name, value)
    uncommented = asdict(config.load_settings())
    # Spelled as the operator would: a relative SQLite path (the same file) and the user a root worker picks.
    assert uncommented.pop("database_url") == "sqlite:///var/robotni.db"
    assert Path(defaults.pop("database_url").removeprefix("sqlite:///")) == tmp_path / "var" / "robotni.db"
    assert (defaults.pop("job_user"), uncommented.pop("job_user")) == ("", "nobody")
    assert uncommented == defaults


def test_init_writes_a_project(tmp_path):
    result = CliRunner().invoke(main, ["init", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    demo = tmp_path / "demo"
    assert sorted(str(p.relative_to(demo)) for p in demo.rglob("*") if p.is_file()) == [
        ".env",
        "Procfile",
        "workers/add.py",
        "workers/backup-export.py",
        "workers/fakejob.py",
        "workers/helloworld.py",
        "workers/report-daily.py",
    ]
    assert (demo / "workers" / "add.py").read_bytes() == (ROOT / "workers" / "add.py").read_bytes()
    assert f"cd {demo} && robotni start" in result.output


def test_init_refuses_to_overwrite(tmp_path):
    mine = tmp_path / "workers" / "add.py"
    mine.parent.mkdir()
    mine.write_text("# my own\n")
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code != 0
    assert "workers/add.py already exist" in result.output
    assert mine.read_text() == "# my own\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["add.py", "workers"]  # nothing else written


def test_start_runs_the_worker_line_once_per_queue():
    plan = processes((ROOT / "Procfile").read_text(), ["default", "gpu"])
    assert [name for name, _, _ in plan] == ["web", "worker.default", "worker.gpu", "webhooks", "beat", "flower"]
    assert [extra for _, _, extra in plan] == [{}, {"ROBOTNI_QUEUE": "default"}, {"ROBOTNI_QUEUE": "gpu"}, {}, {}, {}]
    assert "-Q ${ROBOTNI_QUEUE:-default} -n ${ROBOTNI_QUEUE:-default}@%h" in plan[1][1]


@pytest.mark.timeout(60)
def test_start_without_a_project_says_what_to_do(tmp_path):
    done = robotni(tmp_path, "start")
    assert done.returncode == 1
    assert "the workers folder does not exist" in done.stderr
    assert "robotni init" in done.stderr


@pytest.mark.timeout(60)
def test_start_stops_before_any_process_when_the_store_cannot_be_upgraded(tmp_path):
    assert CliRunner().invoke(main, ["init", str(tmp_path)]).exit_code == 0
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "robotni.db").write_text("not a database\n" * 100)
    done = robotni(tmp_path, "start")
    assert done.returncode == 1
    assert "could not be opened and upgraded" in done.stderr
    assert "nothing was started" in done.stderr
    assert "started (pid=" not in done.stdout  # honcho's line for each process it starts


def test_a_robotni_error_is_a_message_not_a_traceback(tmp_path):
    done = robotni(tmp_path, "venvs", "build", "nope", ROBOTNI_WORKERS_DIR=str(ROOT / "workers"))
    assert done.returncode == 1
    assert done.stderr.startswith("Error: unknown worker type 'nope'; known: add,"), done.stderr
    assert "Traceback" not in done.stderr
