"""Flower on the filesystem broker: it sees workers and Robotni's jobs live, and its leftovers are cleaned up."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.stack import Stack, free_port, wait_until

# Dead fanout queues are cleaned after 3 s here (300 s by default), so the test sees the folder shrink.
QUICK_CLEAN = {"ROBOTNI_BROKER_STALE_SECONDS": "3", "ROBOTNI_HEARTBEAT_SECONDS": "0.5"}


def start_flower(stack: Stack, name: str = "flower"):
    """Flower as the Procfile starts it (robotni.flower): on loopback its HTTP API is open without a password."""
    port = free_port()
    env = {"ROBOTNI_FLOWER_BIND": f"127.0.0.1:{port}"}
    proc = stack.spawn(name, [sys.executable, "-m", "robotni.flower"], env)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: _answers(url + "/healthcheck"), 30, f"flower on {url}\n{proc.log()}", every=0.2)
    return proc, url


def listed_workers(flower, url: str) -> dict:
    try:
        return wait_until(lambda: _get_json(url + "/api/workers?refresh=1"), 30, "flower to list workers")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; its log:\n{flower.log()[-4000:]}") from None


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def _get_json(url: str):
    try:
        response = requests.get(url, timeout=5)
        return response.json() if response.ok else None
    except (requests.RequestException, ValueError):
        return None


@contextmanager
def web_and_worker(base: Path, env: dict[str, str]) -> Iterator[Stack]:
    running = Stack(base, {**QUICK_CLEAN, **env})
    try:
        running.start_web()
        running.start_worker("main")
        yield running
    finally:
        running.stop()


@pytest.fixture
def flower_stack(tmp_path, backend):
    """Web and one worker on each stack; Flower is started by the test."""
    with web_and_worker(tmp_path, backend.env) as running:
        yield running


@pytest.fixture
def embedded_stack(tmp_path):
    """The filesystem broker's folder exists on the embedded default only."""
    with web_and_worker(tmp_path, {}) as running:
        yield running


def test_flower_shows_workers_and_a_finished_job(flower_stack):
    flower, url = start_flower(flower_stack)
    workers = listed_workers(flower, url)
    assert any(name.startswith("main@") for name in workers)
    job = flower_stack.submit("add", {"x": 1, "y": 2}, project="flowers")
    flower_stack.wait_for(job["id"])
    task = wait_until(
        lambda: (t := _get_json(f"{url}/api/task/info/{job['id']}")) and t.get("state") == "SUCCESS" and t,
        30,
        "flower to see the job's task succeed",
    )
    assert task["name"] == "robotni.run_job" and task["worker"].startswith("main@")
    assert job["id"] in task["args"]


def test_a_worker_started_after_flower_sends_it_task_events(tmp_path):
    """Workers send task events only when asked; Flower asks again every 5 s, so a later worker is asked too."""
    stack = Stack(tmp_path, QUICK_CLEAN)
    try:
        stack.start_web()
        flower, url = start_flower(stack)
        stack.start_worker("late")  # after Flower's own first ask at its start
        wait_until(lambda: any(n.startswith("late@") for n in listed_workers(flower, url)), 30, "late listed")

        def seen_by_flower() -> bool:
            job = stack.submit("add", {"x": 1, "y": 2})
            stack.wait_for(job["id"])
            return (_get_json(f"{url}/api/task/info/{job['id']}") or {}).get("state") == "SUCCESS"

        wait_until(seen_by_flower, 30, "flower to see a job the late worker ran", every=0.5)
    finally:
        stack.stop()


def pool_size(url: str, worker: str) -> int:
    stats = (_get_json(url + "/api/workers?refresh=1") or {}).get(worker, {}).get("stats", {})
    return stats.get("pool", {}).get("max-concurrency", 0)


def test_flower_buttons_revoke_a_job_and_resize_the_pool_on_loopback(flower_stack):
    flower, url = start_flower(flower_stack)
    (worker,) = [name for name in listed_workers(flower, url) if name.startswith("main@")]
    job = flower_stack.submit("sleeper", {"seconds": 30})
    flower_stack.wait_for(job["id"], ["running"])
    revoked = requests.post(f"{url}/api/task/revoke/{job['id']}?terminate=true", timeout=10)
    assert revoked.ok, revoked.text
    assert flower_stack.wait_for(job["id"], timeout=15)["status"] == "cancelled"
    assert requests.post(f"{url}/api/worker/pool/grow/{worker}?n=1", timeout=10).ok
    wait_until(lambda: pool_size(url, worker) == 3, 30, "the pool to grow to 3")
    assert requests.post(f"{url}/api/worker/pool/shrink/{worker}?n=1", timeout=10).ok
    wait_until(lambda: pool_size(url, worker) == 2, 30, "the pool to shrink back to 2")


def broker_files(stack: Stack) -> int:
    broker = stack.data_dir / "broker"
    bindings = sum(len(json_list(p)) for p in (broker / "control").glob("*.exchange"))
    # A queue's folder counts as a file. `processed` holds consumed messages, which beat's retention cleanup
    # removes (tests/test_schedules.py).
    return sum(len(os.listdir(folder)) + 1 for folder in (broker / "queue").iterdir()) + bindings


def json_list(path: Path) -> list:
    import json

    return json.loads(path.read_text() or "[]")


def test_broker_folder_stays_bounded_across_restarts(embedded_stack):
    embedded_stack.submit("helloworld")
    for round_ in range(3):
        flower, url = start_flower(embedded_stack, f"flower{round_}")
        listed_workers(flower, url)
        extra = embedded_stack.start_worker(f"extra{round_}", concurrency=1)
        for proc in (flower, extra):
            proc.stop()
    grown = broker_files(embedded_stack)
    # The live worker's cleaner removes what the stopped workers and Flowers left: bindings, events, pings.
    settled = wait_until(
        lambda: ((n := broker_files(embedded_stack)) <= 8 and n) or None, 60, "the broker folder to shrink"
    )
    assert settled <= 8, (grown, settled)
