"""Live events (Server-Sent Events) through HTTP: a job's status, progress and log, resumed after a dropped
connection with Last-Event-ID without losing or repeating an event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from robotni.store import engine
from robotni.store.events import record
from robotni.store.models import Event, Job, utcnow
from tests.stack import wait_until


def read_events(response: requests.Response) -> Iterator[dict]:
    """Each event of an SSE response as {"event", "id", "data"}; comments (keep-alives) are skipped."""
    event: dict = {}
    for line in response.iter_lines(decode_unicode=True):
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith((":", "retry:")):
            name, _, value = line.partition(": ")
            event[name] = json.loads(value) if name == "data" else value


def take(stack, path: str, count: int | None, headers: dict | None = None) -> list[dict]:
    """The first count events of a stream (None: until `end`), then the connection is dropped."""
    taken = []
    with requests.get(stack.api(path), stream=True, timeout=30, headers=headers or {}) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for event in read_events(response):
            taken.append(event)
            if event["event"] == "end" or len(taken) == count:
                break
    return taken


def test_a_job_stream_resumes_after_a_dropped_connection(stack):
    job = stack.submit("ticker", {"lines": 12, "every": 0.15})
    first = take(stack, f"/jobs/{job['id']}/events", 6)
    assert first[0]["event"] == "status" and first[0]["data"]["type"] == "job.current"
    rest = take(stack, f"/jobs/{job['id']}/events", None, {"Last-Event-ID": first[-1]["id"]})
    events = first + rest
    assert all(e["id"] for e in events)
    log = "".join(e["data"]["data"] for e in events if e["event"] == "log")
    assert log == "".join(f"line {n}\n" for n in range(12))
    statuses = [e["data"]["type"] for e in events if e["event"] == "status"][1:]
    assert statuses.count("job.completed") == 1 and statuses[-1] == "job.completed"
    assert len(statuses) == len(set(statuses))
    assert events[-1] == {"event": "end", "id": events[-1]["id"], "data": {"status": "completed"}}
    assert any(e["event"] == "progress" for e in events)


def test_streams_of_one_job_opened_at_different_times_tell_the_same_story(stack):
    """Several streams of a job in one web process share one reader; a late one catches up from the store."""
    job = stack.submit("ticker", {"lines": 10, "every": 0.2})
    with ThreadPoolExecutor(4) as pool:
        early = [pool.submit(take, stack, f"/jobs/{job['id']}/events", None) for _ in range(3)]
        wait_until(lambda: stack.job(job["id"])["log_bytes"] > 20, 20, "some lines")
        late = pool.submit(take, stack, f"/jobs/{job['id']}/events", None)
        stories = [future.result() for future in [*early, late]]
    for events in stories:
        assert "".join(e["data"]["data"] for e in events if e["event"] == "log") == "".join(
            f"line {n}\n" for n in range(10)
        )
        assert events[-1]["data"] == {"status": "completed"}
        statuses = [e["data"]["type"] for e in events if e["event"] == "status"]
        assert statuses[-1] == "job.completed" and len(statuses) == len(set(statuses))


def test_a_project_stream_tells_status_changes_and_resumes(stack):
    opened = requests.get(stack.api("/events?project=streamed"), stream=True, timeout=30)
    try:
        ids = [stack.submit("helloworld", project="streamed")["id"] for _ in range(2)]
        seen = []
        for event in read_events(opened):
            seen.append(event)
            if sum(e["data"]["type"] == "job.completed" for e in seen) == 2:
                break
    finally:
        opened.close()
    assert {e["data"]["job_id"] for e in seen} == set(ids) and all(e["data"]["project"] == "streamed" for e in seen)
    again = take(stack, "/events?project=streamed", len(seen) - 1, {"Last-Event-ID": seen[0]["id"]})
    assert [e["id"] for e in again] == [e["id"] for e in seen[1:]]


def test_a_project_stream_sends_an_event_committed_after_later_ones(stack):
    """On PostgreSQL an event's transaction can commit after those of later ids: the stream holds them back until
    it does, and sends all of them in id order."""
    if "ROBOTNI_DATABASE_URL" not in stack.env:
        pytest.skip("SQLite commits one transaction at a time")
    early = stack.wait_for(stack.submit("helloworld", project="late")["id"])
    store = engine.make_engine(stack.env["ROBOTNI_DATABASE_URL"])
    opened = requests.get(stack.api("/events?project=late"), stream=True, timeout=30)
    try:
        with Session(store, expire_on_commit=False) as session:
            job = session.get(Job, early["id"])
            assert job is not None
            record(session, job, "job.completed", utcnow(), subscribed=False)
            session.flush()  # its id is taken (the newest), its commit comes after the next job's events
            in_flight = session.scalars(select(func.max(Event.id))).one()
            # A second or so: the readers read past the missing id a few times meanwhile.
            later = stack.submit("ticker", {"lines": 4, "every": 0.3}, project="late")["id"]
            stack.wait_for(later)
            session.commit()
        seen = []
        for event in read_events(opened):
            seen.append(event)
            if event["data"]["job_id"] == later and event["data"]["type"] == "job.completed":
                break
    finally:
        opened.close()
        store.dispose()
    ids = [int(event["id"]) for event in seen]
    assert in_flight in ids and ids == sorted(ids), ids


def test_an_unknown_last_event_id_is_a_422(stack):
    job = stack.submit("helloworld")
    stack.wait_for(job["id"])
    for resume, path in (
        ("nonsense", f"/jobs/{job['id']}/events"),
        (f"{2**63}-0", f"/jobs/{job['id']}/events"),  # beyond any id: the store cannot compare it (was a broken stream)
        (f"0-{2**64}", f"/jobs/{job['id']}/events"),
        (str(2**63), "/events"),
    ):
        answer = requests.get(stack.api(path), headers={"Last-Event-ID": resume}, timeout=10)
        assert answer.status_code == 422, (resume, path, answer.status_code)
