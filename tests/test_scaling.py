"""Workers that size themselves: ROBOTNI_WORKER_CONCURRENCY, --autoscale, and idle exit; on each stack."""

from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.backends import STACKS, web_on
from tests.stack import Process, Stack, wait_until


@pytest.fixture(scope="module", params=STACKS)
def web(request, tmp_path_factory):
    with web_on(request.param, tmp_path_factory.mktemp(f"scaling-{request.param}"), {}) as stack:
        yield stack


def _worker(stack: Stack, name: str, *options: str, env: dict | None = None) -> Process:
    """A worker as the Procfile starts it: no --concurrency unless options give one."""
    argv = [sys.executable, "-m", "celery", "-A", "robotni", "worker", "-Q", "default", "-n", f"{name}@%h"]
    proc = stack.spawn(name, [*argv, "--without-gossip", "--without-mingle", "--loglevel", "INFO", *options], env)
    wait_until(lambda: " ready." in proc.log(), 60, f"worker {name} ready\n{proc.log()}", every=0.1)
    return proc


def _workers(stack: Stack) -> list[dict]:
    return stack.http.get(stack.api("/status")).json()["workers"]


def _running(stack: Stack) -> int:
    return len(stack.http.get(stack.api("/jobs"), params={"status": "running"}).json()["jobs"])


def test_worker_concurrency_comes_from_the_setting(web):
    gate = Path(tempfile.gettempdir()) / f"robotni-gate-{uuid.uuid4().hex}"  # every job runs until it exists
    proc = _worker(web, "sized", env={"ROBOTNI_WORKER_CONCURRENCY": "3"})
    try:
        workers = wait_until(lambda: _workers(web), 20, "the worker's heartbeat")
        assert [w["concurrency"] for w in workers] == [3]
        ids = [web.submit("gated", {"gate": str(gate)})["id"] for _ in range(4)]
        wait_until(lambda: _running(web) == 3, 60, "three jobs running at once")
        gate.touch()
        assert {web.wait_for(job_id, timeout=60)["status"] for job_id in ids} == {"completed"}
    finally:
        gate.unlink(missing_ok=True)
        proc.stop()


def _orphans(proc: Process) -> list[int]:
    """Processes of the worker's session (it leads one) whose parent left it: a pool process or fork server that
    outlived the process that started it."""
    session = {}
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # not a process, or it ended meanwhile
            continue
        if int(fields[3]) == proc.pid and fields[0] != "Z":
            session[int(entry.name)] = int(fields[1])
    return [pid for pid, parent in session.items() if pid != proc.pid and parent not in session]


def test_autoscale_grows_under_load_and_shrinks_after(web):
    """On the default threads pool, whose slots Celery's autoscaler moves (robotni/worker/pool.py)."""
    gate = Path(tempfile.gettempdir()) / f"robotni-gate-{uuid.uuid4().hex}"  # every job runs until it exists
    proc = _worker(web, "elastic", "--autoscale", "3,1", env={"AUTOSCALE_KEEPALIVE": "2"})
    try:
        # The heartbeat announces max: the reaper may count on the worker for that many jobs.
        wait_until(lambda: [w["concurrency"] for w in _workers(web)] == [3], 20, "the worker's heartbeat")
        ids = [web.submit("gated", {"gate": str(gate)})["id"] for _ in range(5)]
        wait_until(lambda: _running(web) == 3, 60, "three jobs running at once, on a pool that started with one")
        gate.touch()
        ended = [web.wait_for(job_id, timeout=60) for job_id in ids]
        assert {job["status"] for job in ended} == {"completed"}
        wait_until(lambda: "Scaling down 2 processes" in proc.log(), 60, "the pool to shrink back to one slot")
        assert not _orphans(proc)
        assert '"level": "ERROR"' not in proc.log(), proc.log()
    finally:
        gate.unlink(missing_ok=True)
        proc.stop()


def test_an_idle_worker_exits_cleanly_and_a_job_sent_as_it_stops_is_not_lost(web):
    proc = _worker(web, "napper", env={"ROBOTNI_WORKER_IDLE_EXIT": "2"})
    wait_until(lambda: "(ROBOTNI_WORKER_IDLE_EXIT): stopping" in proc.log(), 30, f"the idle exit\n{proc.log()}")
    job = web.submit("helloworld")  # published while the worker stops
    assert proc.popen.wait(timeout=30) == 0
    assert not _workers(web)  # its heartbeat row is gone
    successor = _worker(web, "successor")
    try:
        assert web.wait_for(job["id"], timeout=60)["status"] == "completed"
    finally:
        successor.stop()
        proc.stop()
