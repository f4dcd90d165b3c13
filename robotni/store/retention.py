"""Retention: finished jobs older than ROBOTNI_RETENTION_DAYS go with their attempts, runs, edges, events,
webhook deliveries and folders; schedules' schedule.failed events and their deliveries go at the same age.

Run by beat every ROBOTNI_CLEANUP_SECONDS (robotni/schedules/beat.py); every function takes `now`, for tests.
Only rows in a terminal status are deleted (checked again in the DELETE itself), so a queued, scheduled or
running job is never touched, whatever its age.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, exists, func, select

from robotni.status import TERMINAL
from robotni.store.engine import engine
from robotni.store.jobs import status_in
from robotni.store.models import (
    Attempt,
    Dependency,
    Event,
    Job,
    LogChunk,
    Schedule,
    ScheduleRun,
    WebhookDelivery,
    Workflow,
)

log = logging.getLogger(__name__)
# Rows deleted per transaction, so a first cleanup after months does not hold SQLite's write lock for long.
BATCH = 500
# A consumed message is renamed into the filesystem broker's `processed` folder and read at once; a minute
# later nobody reads it again.
PROCESSED_MAX_AGE = timedelta(minutes=1)


def remove_old_jobs(now: datetime, retention: timedelta, jobs_dir: Path) -> int:
    """Delete finished jobs that ended before now - retention, with their attempts, runs and job folders."""
    cutoff = now - retention
    ended_before = [status_in(TERMINAL), func.coalesce(Job.finished_at, Job.updated_at) < cutoff]
    removed = 0
    while True:
        with engine().begin() as conn:
            ids = [row[0] for row in conn.execute(select(Job.id).where(*ended_before).limit(BATCH))]
            if ids:
                conn.execute(delete(Attempt).where(Attempt.job_id.in_(ids)))
                conn.execute(delete(LogChunk).where(LogChunk.job_id.in_(ids)))
                conn.execute(delete(ScheduleRun).where(ScheduleRun.job_id.in_(ids)))
                conn.execute(delete(Dependency).where(Dependency.job_id.in_(ids)))
                conn.execute(delete(Event).where(Event.job_id.in_(ids)))
                conn.execute(delete(WebhookDelivery).where(WebhookDelivery.job_id.in_(ids)))
                conn.execute(delete(Job).where(Job.id.in_(ids), *ended_before))
        for job_id in ids:
            shutil.rmtree(jobs_dir / job_id, ignore_errors=True)
        removed += len(ids)
        if len(ids) < BATCH:
            return removed


def remove_empty_workflows(now: datetime, retention: timedelta) -> int:
    """Workflows older than the retention whose steps are all gone (each went with remove_old_jobs)."""
    steps = exists().where(Job.workflow_id == Workflow.id)
    with engine().begin() as conn:
        statement = delete(Workflow).where(Workflow.created_at < now - retention, ~steps)
        return conn.execute(statement).rowcount


def remove_old_schedule_events(now: datetime, retention: timedelta) -> int:
    """schedule.failed events (and their deliveries) older than the retention: found by schedule, on the index
    by subject id (a deleted schedule took its own along)."""
    cutoff, schedules = now - retention, select(Schedule.id).scalar_subquery()
    with engine().begin() as conn:
        old_deliveries = [WebhookDelivery.job_id.in_(schedules), WebhookDelivery.created_at < cutoff]
        conn.execute(delete(WebhookDelivery).where(*old_deliveries))
        return conn.execute(delete(Event).where(Event.job_id.in_(schedules), Event.created_at < cutoff)).rowcount


def remove_orphan_folders(now: datetime, retention: timedelta, jobs_dir: Path) -> int:
    """Job folders with no job row (a store that was reset, a job removed by hand) older than the retention."""
    cutoff = _utc_timestamp(now - retention)
    try:
        folders = [entry for entry in os.scandir(jobs_dir) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return 0
    old = {entry.name: entry.path for entry in folders if entry.stat().st_mtime < cutoff}
    removed = 0
    names = list(old)
    for start in range(0, len(names), BATCH):
        chunk = names[start : start + BATCH]
        with engine().connect() as conn:
            known = {row[0] for row in conn.execute(select(Job.id).where(Job.id.in_(chunk)))}
        for name in set(chunk) - known:
            shutil.rmtree(old[name], ignore_errors=True)
            removed += 1
    return removed


def remove_processed_messages(now: datetime, processed_dir: Path) -> int:
    """Consumed messages the filesystem broker keeps (`store_processed`), once older than a minute.

    Age is the inode change time: the rename into `processed` sets it, while the mtime is when the message
    was written, which may be long before a consumer took it.
    """
    cutoff = _utc_timestamp(now - PROCESSED_MAX_AGE)
    removed = 0
    try:
        entries = list(os.scandir(processed_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
            if entry.is_file(follow_symlinks=False) and max(info.st_ctime, info.st_mtime) < cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _utc_timestamp(naive_utc: datetime) -> float:
    return (naive_utc - datetime(1970, 1, 1)).total_seconds()


def run(now: datetime, retention_days: float, jobs_dir: Path, processed_dir: Path | None) -> dict[str, int]:
    """One cleanup pass; the counts are logged and returned."""
    retention = timedelta(days=retention_days)
    counts = {
        "jobs": remove_old_jobs(now, retention, jobs_dir),
        "workflows": remove_empty_workflows(now, retention),
        "schedule_events": remove_old_schedule_events(now, retention),
        "orphan_folders": remove_orphan_folders(now, retention, jobs_dir),
        "processed_messages": 0 if processed_dir is None else remove_processed_messages(now, processed_dir),
    }
    log.info("cleanup: removed %s", counts)
    return counts
