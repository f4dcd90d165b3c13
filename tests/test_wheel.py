"""The distribution as `pip install robotni` delivers it: the wheel in a fresh venv, `robotni init`, `robotni start`.

Slow (a venv and Robotni's dependencies from the configured index: about 30 s here with a warm pip cache), but
not exclusive: it uses its own ports and folders.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.stack import TERMINAL, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
MARK = "ROBOTNI_WHEEL_TEST_RUN"  # in every process `robotni start` starts: they inherit its environment


def build_wheel(tmp_path: Path) -> Path:
    """From a copy of what the wheel is made of: an in-tree build leaves build/ behind, whose stale modules
    would land in the next wheel."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "robotni", source / "robotni", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(source)])
    (wheel,) = out.glob("robotni-*.whl")
    return wheel


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{argv}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def site_packages(venv: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(run([str(venv / "bin" / "python"), "-c", code]).stdout.strip())


def installed_top_level(site: Path) -> set[str]:
    """What the wheel put in site-packages, from its RECORD (`../../../bin/robotni` is the script, outside)."""
    (dist_info,) = site.glob("robotni-*.dist-info")
    record = (dist_info / "RECORD").read_text().splitlines()
    return {line.split(",")[0].split("/")[0] for line in record if not line.startswith("..")}


def clean_env(**settings: str) -> dict[str, str]:
    """A user's shell: no venv activated (celery and gunicorn are not on PATH), none of the suite's settings."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("ROBOTNI_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return {**env, **settings}


def tree(root: int) -> set[tuple[int, str]]:
    """root and its descendants now, as (pid, start time): a pid reused later is not mistaken for one of them."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # exited meanwhile
            continue
        pid = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)
        started[pid] = fields[19]
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add((pid, started.get(pid, "")))
        todo += children.get(pid, [])
    return found


def still_running(known: set[tuple[int, str]], mark: str) -> list[int]:
    """Processes of the run still there (zombies aside): known ones, and any carrying its mark in their environment."""
    left = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
            marked = f"{MARK}={mark}".encode() in (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if fields[0] != "Z" and (marked or (int(proc.name), fields[19]) in known):
            left.append(int(proc.name))
    return left


@contextmanager
def robotni_start(venv: Path, project: Path, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """`robotni start` in its own session; on exit SIGTERM to its group, SIGKILL after a deadline, nothing left."""
    mark = uuid.uuid4().hex
    log = (project / "start.log").open("wb")
    proc = subprocess.Popen(
        [str(venv / "bin" / "robotni"), "start"],
        cwd=project,
        env={**env, MARK: mark},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    known: set[tuple[int, str]] = set()
    try:
        yield proc
        known = tree(proc.pid)
    finally:
        stopped_in_time = stop(proc)
        left = still_running(known, mark)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        log.close()
    assert stopped_in_time, "robotni start did not stop within 30 s of SIGTERM\n" + log_tail(project)
    assert not left, f"left running after robotni start stopped: {left}\n" + log_tail(project)


def stop(proc: subprocess.Popen) -> bool:
    """SIGTERM to the group (as a terminal's Ctrl-C or a service manager would); True if that was enough."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        return True
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return False
    except ProcessLookupError:
        proc.wait()
        return True


def log_tail(project: Path) -> str:
    return (project / "start.log").read_text(errors="replace")[-6000:]


def answers(url: str, proc: subprocess.Popen, project: Path) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"robotni start exited with {proc.returncode}\n{log_tail(project)}")
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:
        return False


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.timeout(600)
def test_wheel_installs_and_runs_a_project(tmp_path):
    started = time.monotonic()
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)])
    site = site_packages(venv)
    assert installed_top_level(site) == {"robotni", f"{wheel.name.split('-py3')[0]}.dist-info"}
    assert next(site.glob("robotni-*.dist-info/top_level.txt")).read_text().split() == ["robotni"]
    assert not list(site.glob("celeryconfig*"))

    home = tmp_path / "home"
    home.mkdir()
    made = run([str(venv / "bin" / "robotni"), "init", "demo"], cwd=home, env=clean_env())
    assert "next: cd demo && robotni start" in made.stdout
    project = home / "demo"
    assert (project / "workers" / "add.py").is_file()

    port, flower_port = free_port(), free_port()
    env = clean_env(ROBOTNI_BIND=f"127.0.0.1:{port}", ROBOTNI_FLOWER_BIND=f"127.0.0.1:{flower_port}")
    api = f"http://127.0.0.1:{port}"
    with robotni_start(venv, project, env) as proc:
        wait_until(lambda: answers(f"{api}/healthz", proc, project), 120, f"the API on {api}", every=0.2)
        submitted = requests.post(
            f"{api}/api/worker/jobs", json={"type": "add", "params": {"x": 2, "y": 3}}, timeout=10
        )
        assert submitted.status_code == 202, submitted.text
        url = f"{api}/api/worker/jobs/{submitted.json()['id']}"
        job = wait_until(
            lambda: (j := requests.get(url, timeout=10).json())["status"] in TERMINAL and j, 120, "the job"
        )
        assert (job["status"], job["result"]) == ("completed", {"sum": 5}), job
        assert job["worker"].startswith("default@")  # the Procfile's worker line, run for the default queue
        console = (project / "start.log").read_text(errors="replace")
        # For a person: text lines, one per job event, and not Celery's own repeat of them.
        assert f"job {job['id']}: add attempt 1 started" in console and '{"time": ' not in console
        assert f"robotni.run_job[{job['id']}] succeeded" not in console
        wait_until(lambda: listening(flower_port), 60, f"Flower on {flower_port}\n{log_tail(project)}", every=0.2)
    assert (project / "var").is_dir()  # the data folder of the project's .env defaults: ./var
    print(f"wheel, venv, init, start, job, stop: {time.monotonic() - started:.1f} s")
