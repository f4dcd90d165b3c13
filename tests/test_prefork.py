"""The prefork pool, one setting away from the default threads (ROBOTNI_WORKER_POOL=prefork): jobs run from pool
processes, each with its own store connections, lease keeper and fork servers, and a cancel reaches them at once."""

from __future__ import annotations

import time

import pytest

from tests.stack import Stack

# Beats far apart: a cancel seen within seconds came through the revoke's terminate (a SIGTERM to the pool
# process, robotni/worker/pool.py), not through a lease renewal that read the cancel mark.
SLOW_BEATS = {"ROBOTNI_WORKER_POOL": "prefork", "ROBOTNI_HEARTBEAT_SECONDS": "10"}


@pytest.fixture(scope="module")
def prefork(tmp_path_factory, backend):
    stack = Stack(tmp_path_factory.mktemp(f"prefork-{backend.name}"), {**SLOW_BEATS, **backend.env})
    try:
        stack.start_web()
        worker = stack.start_worker()
        assert "(prefork)" in worker.log(), worker.log()  # Celery's banner: "concurrency: 2 (prefork)"
        yield stack
    finally:
        stack.stop()


def test_a_job_ends_with_its_progress_and_output_and_a_forked_job_with_its_result(prefork):
    stepper = prefork.submit("stepper")
    forked = prefork.submit("forked", {"x": 2, "y": 3})
    done = prefork.wait_for(stepper["id"])
    assert (done["status"], done["progress"], done["progress_message"]) == ("completed", 1.0, "done")
    logs = prefork.http.get(prefork.api(f"/jobs/{stepper['id']}/logs")).json()
    assert "half" in logs["data"]
    assert prefork.wait_for(forked["id"])["result"] == {"sum": 5, "preloaded": True}


def test_a_running_job_is_cancelled_within_seconds_between_beats(prefork):
    job = prefork.submit("sleeper", {"seconds": 30})
    prefork.wait_for(job["id"], ["running"])
    asked = time.monotonic()
    assert prefork.http.delete(prefork.api(f"/jobs/{job['id']}")).status_code == 202
    ended = prefork.wait_for(job["id"], timeout=8)
    assert ended["status"] == "cancelled", ended
    assert time.monotonic() - asked < 5  # the next beat was up to 10 s away
