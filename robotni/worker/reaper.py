"""Recovery from the job table: what a dead worker, a lost message or a due retry left behind.

It runs in every worker's main process (robotni.workers.Heartbeat), outside the pool, so it works while
every pool process is busy and needs no beat; several reapers at once are harmless, as every change is a
compare-and-set and only the winner publishes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from robotni.errors import UnknownType
from robotni.status import JobStatus
from robotni.store import claims, jobs
from robotni.store.engine import engine
from robotni.store.models import Job, utcnow
from robotni.worktypes.registry import RetryPolicy, registry

log = logging.getLogger(__name__)
# Rows handled per pass, so one pass stays short even after a long outage; the next pass takes the rest.
BATCH = 200
# A lost attempt runs again after this: soon, but not in a tight loop if the job itself is what kills workers.
LOST_RETRY_SECONDS = 1.0

Publish = Callable[[Job], None]


def reap(publish: Publish, idle_queues: list[str], republish_after: float, lost_attempts: int) -> dict[str, int]:
    counts = {
        "lost": recover_expired(lost_attempts),
        "released": release_due(publish),
        "republished": republish_stale(publish, idle_queues, republish_after),
        "rate_woken": wake_rate_limited(publish, idle_queues),
    }
    if any(counts.values()):
        log.info("reaper: %s", counts)
    return counts


def _policy(job: Job) -> RetryPolicy:
    try:
        return registry()[job.type].retry
    except UnknownType:
        return RetryPolicy()


def _rows(query: Select[Job]) -> list[Job]:
    with Session(engine(), expire_on_commit=False) as session:
        return list(session.scalars(query))


def recover_expired(lost_attempts: int) -> int:
    """Running jobs whose lease ran out: cancelled if asked, run again if attempts remain, else failed.

    A lost worker is not the script's fault: the job runs again up to `lost_attempts` times without spending
    its type's retries (`retry.max_retries`); past that, a loss counts as a failed attempt, so a job that kills
    every worker it runs on still ends.
    """
    now = utcnow()
    query = select(Job).where(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now).limit(BATCH)
    recovered = 0
    for job in _rows(query):
        lost = f"worker {job.worker} lost during attempt {job.attempts}"
        if job.cancel_requested:
            row = jobs.finish(job, JobStatus.CANCELLED, lease_expired_by=now, error=f"cancelled; {lost}")
        elif job.lost_attempts < lost_attempts:
            row = jobs.retry_later(
                job,
                LOST_RETRY_SECONDS,
                lease_expired_by=now,
                error=f"{lost}; run again ({job.lost_attempts + 1} of {lost_attempts} for lost workers)",
                lost_attempts=Job.lost_attempts + 1,
                max_attempts=Job.max_attempts + 1,  # this attempt does not count against the type's retries
            )
        elif job.attempts < job.max_attempts:
            row = jobs.retry_later(job, _policy(job).delay(job.attempts), lease_expired_by=now, error=lost)
        else:
            error = f"{lost}; no attempts left ({job.lost_attempts} were run again for a lost worker)"
            row = jobs.finish(job, JobStatus.FAILED, lease_expired_by=now, error=error)
        recovered += row is not None
    return recovered


def release_due(publish: Publish) -> int:
    """Scheduled jobs (retries, deferred starts) whose time has come: queued, and their message sent."""
    now = utcnow()
    query = select(Job.id).where(Job.status == JobStatus.SCHEDULED, Job.run_at <= now).limit(BATCH)
    with engine().connect() as conn:
        due = [row[0] for row in conn.execute(query)]
    released = 0
    for job_id in due:
        row = jobs.release(job_id, now)
        if row is not None:
            publish(row)
            released += 1
    return released


def republish_stale(publish: Publish, idle_queues: list[str], republish_after: float) -> int:
    """Queued jobs of an idle queue (a worker has a free slot, the broker holds no message) are lost; resend.

    Only an empty broker queue says a message is gone: with a backlog, a job waits its turn however long that
    takes, and resending it would flood the queue with copies. A message that was only reserved by a busy
    worker runs at most twice as a message and once as a job: the second claim finds the row no longer queued.
    This is also how a job held back by a rate or a concurrency limit is woken when no job's end woke it.
    """
    if not idle_queues:
        return 0
    now, limits = utcnow(), claims.caps()
    stale_before = now - timedelta(seconds=republish_after)
    query = (
        select(Job)
        .where(
            Job.status == JobStatus.QUEUED,
            or_(Job.published_at.is_(None), Job.published_at < stale_before),
            Job.queue.in_(idle_queues),
            # A job over a limit stays unclaimed on purpose: a message would only wake a process to find that.
            *claims.eligible(claims.load(limits, now), limits),
        )
        .order_by(Job.created_at)
        .limit(BATCH)
    )
    republished = 0
    for job in _rows(query):
        if jobs.republished(job):
            publish(job)
            republished += 1
    return republished


def wake_rate_limited(publish: Publish, idle_queues: list[str]) -> int:
    """Jobs held back by their type's rate, once it allows starts again: as many messages as it allows now.

    No job's end announces that a rate's window moved on, so each reaper pass looks; a queue that is not idle
    has messages that wake its processes anyway.
    """
    limits = claims.caps()
    now = utcnow()
    current = claims.load(limits, now)
    woken = 0
    for type_name, rate in limits.rates.items():
        allowed = rate.count - current.started.get(type_name, 0)
        if allowed <= 0:
            continue
        query = (
            select(Job)
            .where(Job.status == JobStatus.QUEUED, Job.type == type_name, Job.queue.in_(idle_queues))
            .order_by(Job.priority, Job.created_at)
            .limit(min(allowed, BATCH))
        )
        for job in _rows(query):
            if jobs.republished(job):
                publish(job)
                woken += 1
    return woken
