"""The job store's side of depends_on, on SQLite and PostgreSQL: a parent's end and its dependent's insert racing."""

from __future__ import annotations

import threading
from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import func, select

from robotni.status import JobStatus, ParentFailure, WorkflowStatus
from robotni.store import claims, creation, dependencies, engine, jobs, retention, workflows
from robotni.store.models import Dependency, Event, utcnow
from robotni.store.workflows import NewStep
from tests import backends

JOB = {"type": "fakejob", "project": "p", "params": {}, "queue": "default", "max_attempts": 1, "venv": None}


@pytest.fixture(params=["sqlite", "postgres"])
def shared_store(request, tmp_path):
    """This process's engine on a fresh store that threads share, with the released jobs' messages recorded."""
    if request.param == "postgres" and not backends.POSTGRES:
        pytest.skip("set ROBOTNI_TEST_POSTGRES_URL to run it on PostgreSQL")
    published: list[str] = []
    with backends.job_store(request.param, tmp_path):
        dependencies.publish_released_with(lambda job: published.append(job.id))
        try:
            yield published
        finally:
            dependencies.publish_released_with(lambda job: None)


def running_parent() -> jobs.Job:
    parent, _ = creation.create(**JOB)
    claimed = claims.take(parent.id, "w", 30)
    assert claimed is not None
    return claimed


def race(parent: jobs.Job, status: JobStatus) -> jobs.Job:
    """The parent's end and the dependent's submit, released at the same moment on two threads."""
    start, child = threading.Barrier(2), {}

    def end() -> None:
        start.wait()
        jobs.finish(parent, status)

    def submit() -> None:
        start.wait()
        child["job"] = creation.create(**JOB, depends_on=[parent.id])[0]

    threads = [threading.Thread(target=end), threading.Thread(target=submit)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return child["job"]


def test_a_parent_ending_while_its_dependent_is_inserted_applies_exactly_once(shared_store):
    """Either the submit sees the parent ended, or the parent's end sees the new edge: never both, never neither."""
    published = shared_store
    for round in range(60):
        status = JobStatus.COMPLETED if round % 3 else JobStatus.FAILED
        submitted = race(running_parent(), status)
        child = jobs.get(submitted.id)
        assert child is not None
        if status is JobStatus.COMPLETED:
            assert child.status == JobStatus.QUEUED and child.parents_left == 0, child
            # Queued by the submit (whose caller publishes it) or by the parent's end (which published it).
            assert (submitted.status == JobStatus.QUEUED) + published.count(child.id) == 1
        else:
            assert child.status == JobStatus.CANCELLED and child.error.endswith("ended failed"), child
            assert child.id not in published


def test_two_last_parents_ending_at_once_release_their_dependent_once(shared_store):
    published = shared_store
    for _ in range(30):
        first, second = running_parent(), running_parent()
        child, _ = creation.create(**JOB, depends_on=[first.id, second.id])
        start = threading.Barrier(2)

        def end(parent: jobs.Job, start: threading.Barrier = start) -> None:
            start.wait()
            jobs.finish(parent, JobStatus.COMPLETED)

        threads = [threading.Thread(target=end, args=(p,)) for p in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert jobs.get(child.id).status == JobStatus.QUEUED and published.count(child.id) == 1


def test_a_flush_settles_dependents_it_did_not_match(shared_store):
    parent, _ = creation.create(**JOB)
    other = {**JOB, "type": "helloworld"}
    cancelled, _ = creation.create(**other, depends_on=[parent.id])
    anyway, _ = creation.create(**other, depends_on=[parent.id], on_parent_failure=ParentFailure.RUN)
    assert jobs.flush(types=["fakejob"]) == 1
    assert jobs.get(cancelled.id).status == JobStatus.CANCELLED
    assert jobs.get(anyway.id).status == JobStatus.QUEUED and shared_store == [anyway.id]


def test_a_cascade_records_an_event_for_every_dependent_it_ends_or_releases(shared_store):
    """Webhooks and live streams see a dependent's change as any other: in the outbox, after its parent's event."""
    parent = running_parent()
    child, _ = creation.create(**JOB, depends_on=[parent.id])
    grandchild, _ = creation.create(**JOB, depends_on=[child.id])
    anyway, _ = creation.create(**JOB, depends_on=[parent.id], on_parent_failure=ParentFailure.RUN)
    jobs.finish(parent, JobStatus.FAILED)
    with engine.engine().connect() as conn:
        found = conn.execute(select(Event.job_id, Event.type).order_by(Event.id)).all()
    assert found[:2] == [(parent.id, "job.started"), (parent.id, "job.failed")]
    assert sorted(found[2:]) == sorted(
        [(child.id, "job.cancelled"), (grandchild.id, "job.cancelled"), (anyway.id, "job.queued")]
    )


def test_retention_removes_old_workflows_with_their_steps_and_edges(shared_store, tmp_path):
    step = {"type": "fakejob", "queue": "default", "params": {}, "venv": None, "max_attempts": 1}
    found, _ = workflows.create("p", "old", [NewStep("a", **step), NewStep("b", **step, depends_on=["a"])])
    assert workflows.cancel(found.workflow.id) == []
    assert workflows.get(found.workflow.id).status == WorkflowStatus.CANCELLED
    assert retention.run(utcnow() + timedelta(days=8), 7, tmp_path, None)["workflows"] == 1
    assert workflows.get(found.workflow.id) is None
    with engine.engine().connect() as conn:
        assert conn.execute(select(func.count()).select_from(Dependency)).scalar() == 0


def _step(name: str, *parents: str) -> NewStep:
    return NewStep(name, "fakejob", "default", {}, None, 1, depends_on=list(parents))


def _racing(*calls) -> list[BaseException]:
    """The calls released at the same moment on threads of their own; what each raised."""
    start, raised = threading.Barrier(len(calls)), []

    def run(call) -> None:
        start.wait()
        try:
            call()
        except BaseException as exc:  # a deadlock PostgreSQL detected: the loser's transaction is aborted
            raised.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return raised


def test_a_workflow_cancel_racing_its_steps_ends_never_deadlocks(shared_store):
    """A cancel locks the workflow's steps while steps end (each locking its own row, then its dependents), a
    waiting step is cancelled on its own and a queued one is claimed: one lock order, so no round deadlocks, every
    step ends once, and a step claimed mid-cancel is marked to stop."""
    for _ in range(40):
        # a and b run (b already marked by a job cancel, so the workflow's cancel passes it by), c is queued, each
        # of a and b has waiting dependents whose ids are in another order than their rows.
        names = [f"d{i}" for i in range(30)]
        steps = [_step("a"), _step("b"), _step("c"), _step("w", "c")]
        steps += [_step(name, "a" if i % 2 else "b") for i, name in enumerate(names)]
        found, made = workflows.create("p", "race", steps)
        step = {job.step: job for job in made}
        a, b = (claims.take(step[s].id, "w", 30) for s in "ab")
        jobs.cancel(b.id)
        raised = _racing(
            partial(workflows.cancel, found.workflow.id),
            partial(jobs.finish, a, JobStatus.COMPLETED),
            partial(jobs.finish, b, JobStatus.CANCELLED),
            partial(jobs.cancel, step["w"].id),
            partial(claims.take, step["c"].id, "w", 30),
        )
        assert raised == []
        ended = {job.step: jobs.get(job.id) for job in made}
        assert ended["a"].status == JobStatus.COMPLETED and ended["b"].status == JobStatus.CANCELLED
        assert all(ended[name].status == JobStatus.CANCELLED for name in [*names, "w"]), ended
        c = ended["c"]
        assert c.status == JobStatus.CANCELLED or (c.status == JobStatus.RUNNING and c.cancel_requested), c
