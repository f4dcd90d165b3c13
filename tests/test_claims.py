"""Which job a claim takes, at the store, on SQLite and PostgreSQL: one statement for a plain job even where another
type has a rate, and the full read, which counts the rate, when a rate-limited job is first in line."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from robotni.store import claims, creation, engine
from robotni.worktypes.scheduling import Rate
from tests.test_dependencies import JOB, shared_store  # noqa: F401  (a fixture, used below)

pytestmark = pytest.mark.usefixtures("shared_store")
# Another type's rate: one start a minute, so a second start of it within the test is over the rate.
RATED = claims.Caps(rates={"throttled": Rate(1, 60, "1/m")})


@pytest.fixture
def queue() -> str:
    """A queue of the test's own: a process remembers which queues needed the full read."""
    return f"q-{uuid.uuid4().hex[:8]}"


@contextmanager
def statements() -> Iterator[list[str]]:
    """The first word of each statement this process sends to the store meanwhile."""
    sent: list[str] = []

    def seen(conn, cursor, statement, *_):
        sent.append(statement.split(None, 1)[0].upper())

    event.listen(engine.engine(), "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine.engine(), "before_cursor_execute", seen)


def submit(queue: str, type_name: str = JOB["type"]) -> str:
    job, _ = creation.create(**{**JOB, "queue": queue, "type": type_name})
    return job.id


def test_a_plain_job_is_claimed_in_one_statement_though_another_type_has_a_rate(queue):
    plain = submit(queue)
    with statements() as sent:
        claimed = claims.claim_next(queue, "w", 30, RATED)
    assert claimed is not None and claimed.id == plain
    assert [s for s in sent if s != "INSERT"] == ["UPDATE"], sent  # and the start's event


def test_a_rate_limited_job_first_in_line_waits_for_its_rate_and_the_next_plain_job_goes_first(queue):
    first = submit(queue, "throttled")
    taken = claims.claim_next(queue, "w", 30, RATED)
    assert taken is not None and taken.id == first
    held, plain = submit(queue, "throttled"), submit(queue)
    taken = claims.claim_next(queue, "w", 30, RATED)
    assert taken is not None and taken.id == plain  # the full read counted the rate: the older job waits
    assert claims.claim_next(queue, "w", 30, RATED) is None
    taken = claims.claim_next(queue, "w", 30, claims.Caps())
    assert taken is not None and taken.id == held  # without the rate, the held job was next


def test_once_no_rated_job_is_first_in_line_a_claim_is_one_statement_again(queue):
    submit(queue, "throttled")
    assert claims.claim_next(queue, "w", 30, RATED) is not None  # the full read: a rated job was first
    plain, later = submit(queue), submit(queue)
    assert claims.claim_next(queue, "w", 30, RATED).id == plain  # full again; it finds only plain jobs
    with statements() as sent:
        assert claims.claim_next(queue, "w", 30, RATED).id == later
    assert [s for s in sent if s != "INSERT"] == ["UPDATE"], sent


def test_claims_racing_for_plain_jobs_take_each_job_once(queue):
    """Eight claims at once, each in one statement: a row another claim holds is passed over, not taken twice."""
    submitted = {submit(queue) for _ in range(8)}
    start = threading.Barrier(8)

    def claim(_: int) -> str | None:
        start.wait()
        job = claims.claim_next(queue, "w", 30, claims.Caps())
        return None if job is None else job.id

    with ThreadPoolExecutor(8) as pool:
        taken = list(pool.map(claim, range(8)))
    assert sorted(taken) == sorted(submitted)
