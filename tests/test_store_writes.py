"""The job store's writes around a submit, a flush and a lease, on SQLite and PostgreSQL: a discard after a failed
publish, the outbox rows of many jobs changed at once, and one renewal for all of a worker's leases."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from robotni.status import JobStatus
from robotni.store import claims, creation, deliveries, dependencies, engine, jobs
from robotni.store.models import WebhookDelivery, WebhookSubscription, utcnow
from tests.test_dependencies import JOB, running_parent, shared_store  # noqa: F401  (a fixture, used below)

pytestmark = pytest.mark.usefixtures("shared_store")


def test_a_discard_withdraws_a_queued_job_but_not_one_a_worker_took_first():
    """The API discards a job whose message failed; a claim (of the best queued job, whichever message woke it)
    may have taken it by then: it runs, keeps its parents, and the API must not answer that it was refused."""
    parent = running_parent()
    jobs.finish(parent, JobStatus.COMPLETED)
    taken, _ = creation.create(**JOB, depends_on=[parent.id])
    assert claims.take(taken.id, "w", 30) is not None
    assert creation.discard(taken.id) is False
    assert jobs.get(taken.id).status == JobStatus.RUNNING
    assert [p.id for p in dependencies.parents_of(taken.id)] == [parent.id]
    unsent, _ = creation.create(**JOB, depends_on=[parent.id])
    assert creation.discard(unsent.id) is True
    assert jobs.get(unsent.id) is None and dependencies.parents_of(unsent.id) == []


def test_a_flush_makes_each_job_the_deliveries_of_its_own_project_and_callback():
    """A flush reads the subscriptions once for all its jobs (events.record_all): each still gets its own."""
    with Session(engine.engine()) as session, session.begin():
        for sid, projects in (("all", []), ("p-only", ["p"]), ("q-only", ["q"])):
            subscription = WebhookSubscription(id=sid, url=f"https://{sid}.example/", secret="whsec_x", enabled=True)
            session.add(subscription)
            subscription.events, subscription.projects = ["job.cancelled"], projects
    in_p, _ = creation.create(**JOB, callback_url="https://callback.example/")
    in_r, _ = creation.create(**{**JOB, "project": "r"})
    assert jobs.flush() == 2
    with engine.engine().connect() as conn:
        found = conn.execute(select(WebhookDelivery.job_id, WebhookDelivery.subscription_id)).all()
    assert sorted(found, key=str) == sorted(
        [(in_p.id, "all"), (in_p.id, "p-only"), (in_p.id, None), (in_r.id, "all")], key=str
    )


def test_a_redelivery_whose_event_the_retention_took_meanwhile_is_none():
    """The API answers 404 for it: no delivery left to send, rather than a 500 from a missing event."""
    with Session(engine.engine()) as session, session.begin():
        session.add(WebhookSubscription(id="s", url="https://s.example/", events=[], projects=[], secret="whsec_x"))
        delivery = WebhookDelivery(
            event_id=12345, job_id="j", subscription_id="s", url="https://s.example/", status="failed", attempts=8,
            next_try_at=utcnow(), created_at=utcnow(),
        )  # fmt: skip
        session.add(delivery)
        session.flush()
        delivery_id = delivery.id
    assert deliveries.redeliver("s", delivery_id) is None


def test_one_statement_renews_the_leases_of_every_running_job_and_reads_their_cancel_marks():
    """A worker's lease keeper renews all its jobs at once: each one's cancel mark, and none for a job whose attempt
    is no longer this worker's. A renewal bumps no version: a client polling with an ETag still gets 304."""
    plain, marked, requeued = (running_parent() for _ in range(3))
    jobs.cancel(marked.id)
    jobs.requeue(requeued)
    before = {job.id: jobs.get(job.id) for job in (plain, marked)}
    statements: list[str] = []
    listen = (engine.engine(), "before_cursor_execute", lambda *args: statements.append(args[2]))
    event.listen(*listen)
    try:
        marks = jobs.renew([plain, marked, requeued], lease_seconds=60)
    finally:
        event.remove(*listen)
    assert marks == {plain.id: False, marked.id: True}
    assert len(statements) == 1, statements
    for job_id, earlier in before.items():
        now = jobs.get(job_id)
        assert now.version == earlier.version and now.lease_expires_at > earlier.lease_expires_at
    assert jobs.get(requeued.id).lease_expires_at is None
