"""/metrics: job counters that match the jobs run through HTTP on a real worker, exactly; API latency from every
gunicorn worker; totals that survive a rollup and the removal of old jobs (robotni/store/tallies.py)."""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta

import pytest
import requests
from sqlalchemy import create_engine, delete, select

from robotni.store import migrate, tallies
from robotni.store.models import Job, MetricTotal, utcnow
from tests.stack import Stack, scrape, wait_until

TERMINAL = ("cancelled", "completed", "failed", "timed_out")


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[name][frozenset(labels.items())]


def job_metrics(samples: dict) -> dict:
    """The samples that come from the job store (API latency left out)."""
    return {k: v for k, v in samples.items() if not k.startswith("robotni_http_")}


def seconds(job: dict) -> float:
    return (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["started_at"])).total_seconds()


def store(stack: Stack):
    """The stack's job store, opened from here as its processes do."""
    return create_engine(stack.env.get("ROBOTNI_DATABASE_URL", f"sqlite:///{stack.data_dir / 'robotni.db'}"))


def test_counters_match_the_jobs_run(stack):
    # Known types and outcomes, all through HTTP on the stack's real worker.
    added = [stack.submit("add", {"x": i, "y": 1}) for i in range(3)]
    failed = stack.submit("failer", {"code": 3})
    flaky = stack.submit("flaky")  # two retries, completed on its third attempt
    timed_out = stack.submit("shortsleeper")
    parked = [stack.submit("parked") for _ in range(2)]  # a queue no worker takes
    sleeper = stack.submit("sleeper", {"seconds": 60})
    stack.wait_for(sleeper["id"], ["running"])

    during = scrape(stack)
    assert value(during, "robotni_jobs_running", type="sleeper") == 1
    assert value(during, "robotni_queue_depth", queue="parked") == 2
    assert value(during, "robotni_workers_alive") == 1
    assert value(during, "robotni_job_store_up") == 1

    assert stack.http.delete(stack.api(f"/jobs/{sleeper['id']}")).status_code == 202  # cancelled while running
    assert stack.http.delete(stack.api(f"/jobs/{parked[0]['id']}")).status_code == 200  # cancelled while queued
    ended = [stack.wait_for(j["id"]) for j in [*added, failed, flaky, timed_out, sleeper, parked[0]]]
    statuses = ["completed", "completed", "completed", "failed", "completed", "timed_out", "cancelled", "cancelled"]
    assert [j["status"] for j in ended] == statuses

    after = scrape(stack)
    submitted = {"add": 3, "failer": 1, "flaky": 1, "shortsleeper": 1, "parked": 2, "sleeper": 1}
    finished = {
        ("add", "completed"): 3,
        ("failer", "failed"): 1,
        ("flaky", "completed"): 1,
        ("shortsleeper", "timed_out"): 1,
        ("sleeper", "cancelled"): 1,
        ("parked", "cancelled"): 1,
    }
    types = {dict(labels)["type"] for labels in after["robotni_jobs_submitted_total"]}
    assert submitted.keys() <= types and "helloworld" in types  # every known type is listed, at 0 when unused
    for type_ in types:
        assert value(after, "robotni_jobs_submitted_total", type=type_) == submitted.get(type_, 0), type_
        for status in TERMINAL:
            got = value(after, "robotni_jobs_finished_total", type=type_, status=status)
            assert got == finished.get((type_, status), 0), (type_, status)
    assert value(after, "robotni_queue_depth", queue="parked") == 1
    assert value(after, "robotni_queue_depth", queue="default") == 0
    assert all(v == 0 for v in after["robotni_jobs_running"].values())

    # The duration histogram: jobs that ended while running, each with its last attempt's run time.
    ran = {
        "add": ended[:3],
        "failer": [ended[3]],
        "flaky": [ended[4]],
        "shortsleeper": [ended[5]],
        "sleeper": [ended[6]],
    }
    for type_, jobs in ran.items():
        durations = [seconds(j) for j in jobs]
        assert value(after, "robotni_job_duration_seconds_count", type=type_) == len(jobs)
        assert value(after, "robotni_job_duration_seconds_sum", type=type_) == pytest.approx(sum(durations), abs=0.01)
        for labels, count in after["robotni_job_duration_seconds_bucket"].items():
            if dict(labels)["type"] == type_ and dict(labels)["le"] != "+Inf":
                le = float(dict(labels)["le"])
                near = {sum(d <= le - 0.001 for d in durations), sum(d <= le + 0.001 for d in durations)}
                assert count in near, (type_, le, durations)
    assert 1.0 <= seconds(ended[5]) < 10  # timed out between its soft (1 s) and hard (2 s) limits
    assert value(after, "robotni_job_duration_seconds_count", type="parked") == 0  # never ran

    # API latency, gathered from both gunicorn workers: one POST 202 per job submitted.
    assert (
        value(
            after, "robotni_http_request_duration_seconds_count", route="/api/worker/jobs", method="POST", status="202"
        )
        == 9
    )


def test_a_gunicorn_worker_that_dies_keeps_its_requests_counted(stack):
    def posts() -> float:
        samples = scrape(stack)
        return sum(
            v
            for labels, v in samples["robotni_http_request_duration_seconds_count"].items()
            if dict(labels)["route"] == "/api/worker/jobs" and dict(labels)["method"] == "POST"
        )

    for _ in range(6):  # new connections, so both workers are likely to answer some
        assert requests.post(stack.api("/jobs"), json={"type": "parked"}, timeout=10).status_code == 202
    before = posts()
    folder = stack.data_dir / "prometheus"
    pids = {int(f.stem.rsplit("_", 1)[1]) for f in folder.glob("histogram_*.db")}
    web = next(p for p in stack.processes if p.name == "web")
    workers = [pid for pid in pids if pid != web.pid and os.path.exists(f"/proc/{pid}")]
    assert workers, pids
    os.kill(workers[0], signal.SIGKILL)  # gunicorn starts another; the dead one's file stays
    wait_until(lambda: not os.path.exists(f"/proc/{workers[0]}/status") or _zombie(workers[0]), 10, "the worker to die")
    assert wait_until(lambda: posts() == before and before, 20, "the same count from the new worker set")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" in f.read()
    except OSError:
        return True


def test_rollup_and_removal_of_old_jobs_change_no_counter(stack):
    """Rolled-up totals plus live rows equal the live rows alone; removing rolled-up jobs changes nothing."""
    wait_until(lambda: all(v == 0 for v in scrape(stack)["robotni_jobs_running"].values()), 30, "no job running")
    before = job_metrics(scrape(stack))
    engine = store(stack)
    try:
        later = utcnow() + timedelta(hours=1)  # every ended job has settled by then
        assert tallies.rollup(engine, now=later)
        assert not tallies.rollup(engine, now=later)  # nothing new: the watermark has not moved far enough
        with engine.connect() as conn:
            rows = conn.execute(select(MetricTotal)).all()
        # which buckets hold a job depends on how fast the machine ran them: any bucket will do
        assert any(r.name == "watermark" for r in rows) and any(r.name.startswith("le:") for r in rows)
        assert job_metrics(scrape(stack)) == before
        with engine.begin() as conn:  # what retention cleanup does to old jobs
            removed = conn.execute(delete(Job).where(Job.finished_at.is_not(None))).rowcount
        assert removed >= 8
        assert job_metrics(scrape(stack)) == before
    finally:
        engine.dispose()


def test_metrics_stay_out_of_the_openapi_document(stack):
    paths = stack.http.get(stack.url + "/openapi.json").json()["paths"]
    assert "/metrics" not in paths


def test_what_the_duration_histogram_counts(tmp_path):
    """Only jobs that ended while running are timed, by their last attempt; a clock that went back counts 0."""
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate.upgrade(engine)
    start = datetime(2026, 1, 1, 12)

    def job(status: str, worker: str | None, started: float | None, ended: float | None) -> dict:
        at = lambda s: None if s is None else start + timedelta(seconds=s)  # noqa: E731
        return dict(
            id=f"{status}-{worker}-{started}-{ended}",
            type="t",
            project="p",
            queue="default",
            params={},
            status=status,
            attempts=1,
            max_attempts=2,
            worker=worker,
            cancel_requested=False,
            log_bytes=0,
            version=1,
            created_at=start,
            updated_at=start,
            started_at=at(started),
            finished_at=at(ended),
        )

    rows = [
        job("completed", "w", 0, 0.05),
        job("failed", "w", 0, 3),
        job("cancelled", None, 0, 100),  # cancelled while waiting for its retry: started_at is the first attempt's
        job("cancelled", None, None, 1),  # cancelled before it started
        job("timed_out", "w", 10, 9.5),  # its worker's clock was ahead of the reaper's
        job("running", "w", 0, None),
    ]
    try:
        with engine.begin() as conn:
            conn.execute(Job.__table__.insert(), rows)
        for now in (start, start + timedelta(hours=1)):  # all live, then all rolled up but the running one
            snap = tallies.snapshot(engine, now=now)
            assert {k: v.jobs for k, v in snap.tallies.items() if v.jobs} == {
                ("t", "completed"): 1,
                ("t", "failed"): 1,
                ("t", "cancelled"): 2,
                ("t", "timed_out"): 1,
                ("t", "running"): 1,
            }
            timed = tallies.Tally()
            for tally in snap.tallies.values():
                timed.merge(tally)
            assert (timed.timed, timed.seconds) == (3, pytest.approx(3.05, abs=1e-3))
            assert dict(zip(tallies.BUCKETS, timed.buckets, strict=True))[0.1] == 2  # 0.05 s and the 0 s
            assert dict(zip(tallies.BUCKETS, timed.buckets, strict=True))[2.5] == 2
            assert timed.buckets[-1] == 3 and snap.running == {"t": 1}
        with engine.connect() as conn:
            assert conn.execute(select(MetricTotal.value).where(MetricTotal.name == "watermark")).scalar() is not None
    finally:
        engine.dispose()
