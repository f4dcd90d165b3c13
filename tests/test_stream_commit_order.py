"""The project streams' reader on PostgreSQL, where transactions commit their event ids out of order: an id that
commits after a later one is still delivered, in id order; one that rolled back is passed after the grace."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from robotni.api import commit_order
from robotni.api.feeds import Reader
from robotni.store import creation, engine, events
from robotni.store.models import Event, Job, utcnow
from tests import backends
from tests.stack import wait_until

JOB = {"type": "fakejob", "project": "p", "params": {}, "queue": "default", "max_attempts": 1, "venv": None}


@pytest.fixture
def store(tmp_path) -> Iterator[None]:
    if not backends.POSTGRES:
        pytest.skip("set ROBOTNI_TEST_POSTGRES_URL to run it on PostgreSQL")
    with backends.job_store("postgres", tmp_path):
        yield


@pytest.fixture
def reader(store) -> Reader:
    return started_reader()


def started_reader() -> Reader:
    """A reader with one project stream, read by the test itself (no thread), after its first read (its start)."""
    feeds = Reader()
    feeds.projects.waiters[threading.Event()] = None
    feeds.read_projects()
    return feeds


def begin(job: Job) -> tuple[Session, int]:
    """A transaction that recorded an event of job, not committed yet; the event's id."""
    session = Session(engine.engine(), expire_on_commit=False)
    events.record(session, job, "job.started", utcnow(), subscribed=False)
    session.flush()  # takes the id from the sequence, as a status change does
    # Its own event is the newest it sees: the other transactions' are not committed, and they took lower ids.
    return session, session.scalars(select(func.max(Event.id))).one()


def delivered(feeds: Reader, since: int) -> list[int]:
    found, _ = feeds.project_news(None, since)
    assert found is not None
    return [event.id for event in found]


def test_an_event_committed_after_a_later_one_is_delivered_in_order(reader):
    start = reader.project_start()
    assert start is not None
    job, _ = creation.create(**JOB)
    first, first_id = begin(job)
    second, second_id = begin(job)
    assert first_id < second_id
    second.commit()
    reader.read_projects()
    # The later id waits behind the missing one: neither the reader nor a stream behind it reads past the gap.
    assert second_id not in delivered(reader, start)
    assert reader.project_news(None, start - 1) == (None, first_id - 1)
    first.commit()
    reader.read_projects()
    assert delivered(reader, start)[-2:] == [first_id, second_id]
    assert reader.project_start() == second_id
    for session in (first, second):
        session.close()


def test_a_rolled_back_id_is_passed_after_the_grace(reader, monkeypatch):
    monkeypatch.setattr(commit_order, "GRACE_SECONDS", 1.0)
    start = reader.project_start()
    job, _ = creation.create(**JOB)
    lost, lost_id = begin(job)
    kept, kept_id = begin(job)
    kept.commit()
    lost.rollback()
    reader.read_projects()
    assert kept_id not in delivered(reader, start)

    def read() -> list[int]:
        reader.read_projects()
        return delivered(reader, start)

    wait_until(lambda: kept_id in read(), 10, "the event after the rolled-back id")
    assert lost_id not in delivered(reader, start)
    for session in (kept, lost):
        session.close()


def test_an_event_of_no_stream_is_no_gap(reader):
    """A schedule.failed event shares the ids but no stream sends it: the events after it go out at once."""
    start = reader.project_start()
    job, _ = creation.create(**JOB)
    with Session(engine.engine()) as session:
        session.add(Event(job_id="a-schedule", project="p", type=events.SCHEDULE_FAILED, status="failed"))
        session.commit()
    after, after_id = begin(job)
    after.commit()
    reader.read_projects()
    assert delivered(reader, start)[-1] == after_id
    assert events.SCHEDULE_FAILED not in [event.type for event in reader.project_news(None, start)[0] or []]
    after.close()


def test_a_reader_that_starts_while_an_event_is_in_flight_delivers_it(store):
    """The newest id is committed but an older one is not yet: a reader (and a stream from now) starts before it."""
    job, _ = creation.create(**JOB)
    first, first_id = begin(job)
    second, second_id = begin(job)
    second.commit()
    reader = started_reader()
    assert reader.project_start() == first_id - 1
    first.commit()
    reader.read_projects()
    assert delivered(reader, first_id - 1) == [first_id, second_id]
    for session in (first, second):
        session.close()
