"""Urgent before batch, fair between projects, capped per key, and a queue without a worker says so; each stack."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from tests.stack import TERMINAL, Stack, scrape, wait_until

BACKLOG = 1000
# One job per pool process may start between a submit and its start, besides the job itself (the stack's worker has 2).
POOL_PROCESSES = 2


def _when(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def _started_between(stack: Stack, type_name: str, after: datetime, job: dict) -> int:
    """Other jobs of the type (any project) that started after `after` and before the job did."""
    started = 0
    for status in ("running", *TERMINAL):
        page = stack.http.get(stack.api("/jobs"), params={"type": type_name, "status": status, "limit": 500}).json()
        started += sum(
            1
            for other in page["jobs"]
            if other["id"] != job["id"]
            and other["started_at"]
            and after < _when(other["started_at"]) <= _when(job["started_at"])
        )
    return started


def _submitted(stack: Stack, *args: object, **fields: object) -> tuple[dict, datetime]:
    """The job, and when its submit had committed: claims that read before it cannot have seen it."""
    job = stack.submit(*args, **fields)
    return job, datetime.now(UTC)


def _flush(stack: Stack, **body: list[str]) -> None:
    """Cancel what is left of a backlog and wait for what runs to end, so the next test starts on an idle queue."""
    assert stack.http.post(stack.api("/queue/flush"), json=body).ok
    wait_until(
        lambda: not stack.http.get(stack.api("/jobs"), params={"status": "running"}).json()["jobs"],
        30,
        "the running jobs to end",
    )


def _status_if(stack: Stack, condition) -> dict | None:
    status = stack.http.get(stack.api("/status")).json()
    return status if condition(status) else None


def _submit_many(stack: Stack, count: int, **fields) -> None:
    for _ in range(count):
        stack.submit(**fields)


def test_an_urgent_job_starts_before_a_backlog_of_batch_jobs(stack):
    _submit_many(stack, BACKLOG, type="fakejob", params={"delay_seconds": 0.2}, priority="batch", project="bulk")
    status = stack.http.get(stack.api("/status")).json()
    assert status["waiting_by_priority"]["batch"] > 0 and status["waiting_by_queue"]["default"]["batch"] > 0
    assert scrape(stack)["robotni_jobs_waiting"][frozenset({("queue", "default"), ("priority", "batch")})] > 0
    urgent, submitted = _submitted(stack, "fakejob", {"delay_seconds": 0.2}, priority="urgent", project="bulk")
    assert urgent["priority"] == "urgent"
    started = stack.wait_for(urgent["id"], ("running", *TERMINAL), timeout=30)
    ahead = _started_between(stack, "fakejob", submitted, started)
    assert ahead <= POOL_PROCESSES, f"{ahead} batch jobs started between the urgent submit and its start"
    listed = stack.http.get(stack.api("/jobs"), params={"priority": "urgent", "type": "fakejob"}).json()["jobs"]
    assert [job["id"] for job in listed] == [urgent["id"]]
    _flush(stack, type=["fakejob"])


def test_one_project_s_backlog_delays_another_s_job_by_one_job_per_pool_process(stack):
    _submit_many(stack, 200, type="fakejob", params={"delay_seconds": 0.2}, project="flood")
    single, submitted = _submitted(stack, "fakejob", {"delay_seconds": 0.2}, project="trickle")
    started = stack.wait_for(single["id"], ("running", *TERMINAL), timeout=30)
    # One a process: projects with no job running tie, and the oldest job goes first (pool processes whose jobs
    # ended together both take the backlog's); then the backlog's project runs more, and this one goes next.
    ahead = _started_between(stack, "fakejob", submitted, started)
    assert ahead <= POOL_PROCESSES, f"{ahead} jobs of the flooding project started before the other's one"
    _flush(stack, type=["fakejob"])


def test_a_concurrency_key_never_has_more_than_its_limit_running(stack):
    stack.start_worker("w2")  # 2 workers x 2 pool slots, one job store
    count, samples, stop = 60, [], threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            page = stack.http.get(stack.api("/jobs"), params={"type": "capped", "status": "running"}).json()
            samples.append(sum(1 for job in page["jobs"] if job["params"]["account"] == "acme"))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        ids = [stack.submit("capped", {"account": "acme"})["id"] for _ in range(count)]
        reason = "concurrency key 'capped:account=\"acme\"': 2 running, at its limit of 2"
        wait_until(lambda: stack.job(ids[-1])["waiting_for"] == reason, 10, "the last job's reason")
        # What its waiting jobs wait for, in /status and /metrics: while 2 run (between one's end and the next
        # claim, 1 does).
        key = 'capped:account="acme"'
        status = wait_until(lambda: _status_if(stack, lambda s: key in s["held"]["concurrency_key"]), 10, "held")
        assert status["concurrency_keys"][key] == {
            "running": 2,
            "limit": 2,
            "waiting": status["held"]["concurrency_key"][key],
        }
        held = frozenset({("reason", "concurrency_key"), ("name", key)})
        metrics = wait_until(lambda: (m := scrape(stack)).get("robotni_jobs_held", {}).get(held) and m, 10, "held")
        assert metrics["robotni_concurrency_limit"][frozenset({("key", key)})] == 2
        other = stack.submit("capped", {"account": "other"})  # another key is not held back by acme's
        assert stack.wait_for(other["id"], timeout=30)["status"] == "completed"
        ended = [stack.wait_for(job_id, timeout=120) for job_id in ids]
    finally:
        stop.set()
        sampler.join()
    assert {job["status"] for job in ended} == {"completed"}
    assert ended[0]["concurrency_key"] == 'capped:account="acme"'
    assert len(samples) > 10 and max(samples) == 2, samples


def test_a_job_whose_queue_no_worker_consumes_says_so(stack):
    job = stack.submit("parked")
    shown = wait_until(lambda: stack.job(job["id"])["waiting_for"], 10, "a reason")
    assert "no live worker consumes queue 'parked'" in shown
    types = {t["name"]: t for t in stack.http.get(stack.api("/types")).json()}
    assert types["parked"]["queue_has_worker"] is False and types["fakejob"]["queue_has_worker"] is True
    status = stack.http.get(stack.api("/status")).json()
    assert "parked" in status["queues_without_worker"] and "default" not in status["queues_without_worker"]
    assert status["held"]["worker"]["parked"] >= 1 and "default" not in status["held"]["worker"]
    assert scrape(stack)["robotni_jobs_held"][frozenset({("reason", "worker"), ("name", "parked")})] >= 1
    stack.http.delete(stack.api(f"/jobs/{job['id']}"))


def test_a_rate_holds_across_workers_and_drops_no_job(stack):
    ids = [stack.submit("throttled")["id"] for _ in range(9)]
    ended = [stack.wait_for(job_id, timeout=60) for job_id in ids]
    assert {job["status"] for job in ended} == {"completed"}
    starts = sorted(_when(job["started_at"]) for job in ended)
    # "3/s": no second-long window holds more than 3 starts.
    assert all((starts[i + 3] - starts[i]).total_seconds() >= 1 for i in range(len(starts) - 3)), starts
