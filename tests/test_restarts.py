"""The broker or the job store restarted under running work (fault tests 7 and 8 of the reliability issue).

These stop and start the machine's own Redis and PostgreSQL, so they run only where that is allowed:
`.ci/run` sets ROBOTNI_TEST_RESTART_SERVICES=1 on the CI machine, whose services exist for the tests.
"""

from __future__ import annotations

import os
import subprocess

import pytest
import requests

from tests import backends
from tests.stack import TERMINAL, Stack, wait_until

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("ROBOTNI_TEST_RESTART_SERVICES") != "1" or not (backends.POSTGRES and backends.REDIS),
        reason="restarts this machine's Redis and PostgreSQL: set ROBOTNI_TEST_RESTART_SERVICES=1 and their URLs",
    ),
    pytest.mark.exclusive,
]
# Redis as the machine's image starts it (no persistence: a restart loses every message).
REDIS_START = [
    "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]  # fmt: skip


def postgres_ctl(action: str, check: bool = True) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=check)


def redis_answers() -> bool:
    return subprocess.run(["redis-cli", "ping"], capture_output=True, text=True).stdout.strip() == "PONG"


@pytest.fixture
def redis_stack(tmp_path):
    backend = backends.provision("redis")
    running = Stack(tmp_path, {"ROBOTNI_HEARTBEAT_SECONDS": "0.5", **backend.env})
    try:
        running.start_web()
        running.start_worker(concurrency=2)
        yield running
    finally:
        running.stop()
        if not redis_answers():
            subprocess.run(REDIS_START, check=True)
        postgres_ctl("start", check=False)  # "already running" is the usual case
        wait_until(lambda: subprocess.run(["pg_isready", "-q"]).returncode == 0, 30, "PostgreSQL")
        backend.release()


def test_redis_restart_loses_no_job(redis_stack):
    running = [redis_stack.submit("patient", {"seconds": 3}) for _ in range(2)]
    for job in running:
        redis_stack.wait_for(job["id"], {"running"})
    queued = [redis_stack.submit("helloworld") for _ in range(4)]  # waiting behind the running ones, in Redis only
    subprocess.run(["redis-cli", "shutdown", "nosave"], check=False)
    wait_until(lambda: not redis_answers(), 10, "Redis to stop")
    subprocess.run(REDIS_START, check=True)
    wait_until(redis_answers, 10, "Redis to answer")
    for job in running + queued:
        assert redis_stack.wait_for(job["id"], timeout=60)["status"] == "completed"


def test_postgres_restart_gives_503_then_records_the_outcome(redis_stack):
    job = redis_stack.submit("patient", {"seconds": 4})
    redis_stack.wait_for(job["id"], {"running"})
    postgres_ctl("stop")
    try:
        response = redis_stack.http.get(redis_stack.api(f"/jobs/{job['id']}"))
        assert response.status_code == 503, response.text
        assert "unavailable" in response.json()["message"]
        assert redis_stack.http.post(redis_stack.api("/jobs"), json={"type": "helloworld"}).status_code == 503
    finally:
        postgres_ctl("start")

    def ended():
        try:
            return (found := redis_stack.job(job["id"]))["status"] in TERMINAL and found
        except (AssertionError, requests.RequestException):
            return None  # still reconnecting

    assert wait_until(ended, 60, "the job's outcome")["status"] == "completed"
