"""Celery's own tools act on Robotni jobs: a revoke from `celery control` is a cancel the job row records."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.stack import ROOT, Stack, wait_until

REVOKED_WAITING = "cancelled by Celery revoke before it started"


def celery_control(stack: Stack, *args: str) -> str:
    """`celery -A robotni control ...` as a user types it, against this stack's broker."""
    argv = [sys.executable, "-m", "celery", "-A", "robotni", "control", *args]
    done = subprocess.run(argv, env=stack.env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def busy_stack(tmp_path_factory, backend):
    """Web, beat and one worker with a single pool process, so a second job waits behind the first."""
    stack = Stack(tmp_path_factory.mktemp(f"tools-{backend.name}"), {"ROBOTNI_HEARTBEAT_SECONDS": "0.5", **backend.env})
    try:
        stack.start_web()
        stack.start_beat()
        stack.start_worker(concurrency=1)
        yield stack
    finally:
        stack.stop()


def test_a_waiting_job_revoked_through_celery_is_cancelled_and_never_starts(busy_stack):
    # The revoke must come while the blocker holds the only pool process: `celery control` alone takes seconds
    # to start on a loaded machine.
    blocker = busy_stack.submit("sleeper", {"seconds": 10})
    busy_stack.wait_for(blocker["id"], ["running"])
    waiting = busy_stack.submit("add", {"x": 1, "y": 2})
    celery_control(busy_stack, "revoke", waiting["id"])
    revoked = busy_stack.wait_for(waiting["id"], ["cancelled"], timeout=15)
    assert revoked["error"] == REVOKED_WAITING
    assert busy_stack.wait_for(blocker["id"])["status"] == "completed"
    after = busy_stack.submit("add", {"x": 2, "y": 2})  # the worker is free again: the revoked message came and went
    assert busy_stack.wait_for(after["id"])["status"] == "completed"
    assert busy_stack.job(waiting["id"]) | {"attempts": 0, "started_at": None} == busy_stack.job(waiting["id"])


def test_the_worker_answers_ping_within_a_second_while_busy_with_a_backlog(busy_stack):
    running = busy_stack.submit("sleeper", {"seconds": 30})
    busy_stack.wait_for(running["id"], ["running"])
    backlog = [busy_stack.submit("add", {"x": n, "y": n}) for n in range(3)]  # prefetched and waiting
    try:
        argv = [sys.executable, "-m", "celery", "-A", "robotni", "inspect", "ping", "--timeout", "1"]
        done = subprocess.run(argv, env=busy_stack.env, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert "pong" in done.stdout, done.stdout + done.stderr
    finally:
        for job in [running, *backlog]:
            busy_stack.http.delete(busy_stack.api(f"/jobs/{job['id']}"))
    assert busy_stack.wait_for(running["id"])["status"] == "cancelled"


def test_a_running_job_revoked_without_terminate_is_stopped(busy_stack):
    job = busy_stack.submit("sleeper", {"seconds": 30})
    busy_stack.wait_for(job["id"], ["running"])
    celery_control(busy_stack, "revoke", job["id"])
    assert busy_stack.wait_for(job["id"], timeout=15)["status"] == "cancelled"


def test_a_revoke_sent_while_no_worker_runs_is_kept_for_a_worker_started_later(busy_stack):
    (worker,) = [proc for proc in busy_stack.processes if proc.name.startswith("worker")]
    worker.stop()  # beat still runs, and hears broadcasts while no worker does
    busy_stack.processes.remove(worker)
    job = busy_stack.submit("add", {"x": 1, "y": 1})
    # Sent again until heard: no node replies, and the first may go out before a listener subscribed.
    cancelled = wait_until(
        lambda: celery_control(busy_stack, "revoke", job["id"]) and busy_stack.job(job["id"])["status"] == "cancelled",
        30,
        "beat to hear the revoke",
    )
    assert cancelled and busy_stack.job(job["id"])["error"] == REVOKED_WAITING
    busy_stack.start_worker(concurrency=1)
    later = busy_stack.submit("add", {"x": 2, "y": 3})
    assert busy_stack.wait_for(later["id"])["result"] == {"sum": 5}
    assert busy_stack.job(job["id"])["status"] == "cancelled" and busy_stack.job(job["id"])["attempts"] == 0
