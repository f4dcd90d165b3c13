"""Workers that size themselves: ROBOTNI_WORKER_CONCURRENCY and idle exit; on each stack."""

from __future__ import annotations

import sys
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


def _pool_size(proc: Process) -> int:
    return len(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split())


def test_worker_concurrency_comes_from_the_setting(web):
    proc = _worker(web, "sized", env={"ROBOTNI_WORKER_CONCURRENCY": "3"})
    try:
        workers = wait_until(lambda: _workers(web), 20, "the worker's heartbeat")
        assert [w["concurrency"] for w in workers] == [3]
        assert _pool_size(proc) == 3
    finally:
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
