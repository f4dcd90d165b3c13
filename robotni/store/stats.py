"""Figures over a recent window, one query each: for the dashboard (GET /api/worker/stats) and the daily report.

Counts are exact (GROUP BY in the store). Percentiles are taken in Python over at most `SAMPLE` of the window's
newest jobs, so SQLite and PostgreSQL answer the same by the same code. The queue's depth over time is rebuilt
from timestamps: a job waits from its creation to its first start (or its end, if it never started).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, DateTime, Engine, cast, func, literal, or_, select

from robotni.status import NOT_ENDED, TERMINAL, WAITING, JobStatus
from robotni.store.jobs import status_in
from robotni.store.models import Job

# Percentiles look at no more than this many jobs of a window, its newest: a sorted list of them is a few MB.
SAMPLE = 100_000
# The dashboard's window is cut into about this many buckets (a chart's points), of a round number of seconds.
BUCKETS = 60
BUCKET_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
# The report lists this many of the most frequent failures.
TOP_FAILURES = 10
# What differs between two failures with the same cause: ids, addresses, numbers.
VARYING = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE), "<id>"),
    (re.compile(r"0x[0-9a-f]+|\b[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*\b", re.IGNORECASE), "<hex>"),
    (re.compile(r"\d+(\.\d+)?"), "<n>"),
]
ERROR_KEY_CHARACTERS = 200


@dataclass(frozen=True)
class Window:
    """[start, end) cut into buckets of `bucket` seconds; `projects` None means every project."""

    start: datetime
    end: datetime
    bucket: int
    projects: Sequence[str] | None = None

    @property
    def count(self) -> int:
        return round((self.end - self.start).total_seconds() / self.bucket)

    def moment(self, index: int) -> datetime:
        return self.start + timedelta(seconds=index * self.bucket)

    def jobs(self) -> list[ColumnElement[bool]]:
        """The projects, for a query bounded by a time range: on the range's index (see `_off_index`)."""
        return [] if self.projects is None else [_off_index(Job.project).in_(self.projects)]


def of_projects(projects: Sequence[str] | None) -> list[ColumnElement[bool]]:
    return [] if projects is None else [Job.project.in_(projects)]


def _off_index(column: Any) -> ColumnElement[Any]:
    """column, kept from choosing the index: SQLite's planner, without statistics, prefers an equality on an
    indexed column (a project's or status's every job in the store) to the window's time range, which is far
    narrower (bench/figures.py: 185 ms against 14 ms at 200,000 jobs)."""
    return func.coalesce(column, "")


def window(now: datetime, seconds: int, projects: Sequence[str] | None) -> Window:
    """The `seconds` before now in round buckets, the last one holding now: the same buckets on every poll."""
    bucket = next((step for step in BUCKET_STEPS if step * BUCKETS >= seconds), BUCKET_STEPS[-1])
    epoch = now.replace(tzinfo=UTC).timestamp()
    end = datetime.fromtimestamp((math.floor(epoch / bucket) + 1) * bucket, UTC).replace(tzinfo=None)
    return Window(end - timedelta(seconds=math.ceil(seconds / bucket) * bucket), end, bucket, projects)


def elapsed(start: Any, end: Any, dialect: str) -> ColumnElement[Any]:
    """Seconds from start to end (columns or times), in SQL."""
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


def _bucket(column: Any, win: Window, dialect: str) -> ColumnElement[Any]:
    """The index of the bucket a time falls in, from whole milliseconds (SQLite's julianday is off by a few
    microseconds): integer division, which both stores do alike."""
    since = elapsed(literal(win.start, DateTime()), column, dialect)
    return cast(func.round(since * 1000), BigInteger) // (win.bucket * 1000)


def finished(eng: Engine, win: Window) -> list[dict[str, Any]]:
    """Jobs that ended in each bucket, by terminal status."""
    bucket = _bucket(Job.finished_at, win, eng.dialect.name).label("bucket")
    query = (
        select(bucket, Job.status, func.count())
        .where(Job.finished_at >= win.start, Job.finished_at < win.end, *win.jobs())
        .group_by(bucket, Job.status)
    )
    rows = [{"t": win.moment(i), **{status.value: 0 for status in sorted(TERMINAL)}} for i in range(win.count)]
    with eng.connect() as conn:
        for index, status, count in conn.execute(query):
            if 0 <= index < win.count:
                rows[index][JobStatus(status).value] += count
    return rows


def waiting(eng: Engine, win: Window, now: datetime) -> list[dict[str, Any]]:
    """Jobs created and not yet started (nor ended) at each bucket's end (now, for the last one)."""
    dialect = eng.dialect.name
    left = func.coalesce(Job.started_at, Job.finished_at)
    arrived = _bucket(Job.created_at, win, dialect).label("bucket")
    departed = _bucket(left, win, dialect).label("bucket")
    # Bounded by indexed columns: every job that started or ended since the window's start either ended then
    # (finished_at) or has not ended (status).
    recent = or_(Job.finished_at >= win.start, status_in(NOT_ENDED))
    with eng.connect() as conn:
        depth = (
            conn.scalar(
                select(func.count()).where(status_in(WAITING), Job.started_at.is_(None), *of_projects(win.projects))
            )
            or 0
        )
        arrivals = _per_bucket(
            conn.execute(
                select(arrived, func.count()).where(Job.created_at >= win.start, *win.jobs()).group_by(arrived)
            )
        )
        departures = _per_bucket(
            conn.execute(
                select(departed, func.count()).where(recent, left >= win.start, *win.jobs()).group_by(departed)
            )
        )
    # Backwards from now: before a bucket's end, the jobs that arrived after it were not there yet, and those
    # that left after it still were.
    rows = []
    for index in reversed(range(win.count)):
        rows.append({"t": min(win.moment(index + 1), now), "waiting": max(depth, 0)})
        depth += departures[index] - arrivals[index]
    return rows[::-1]


def _per_bucket(rows: Iterable[Any]) -> Counter[int]:
    return Counter({int(index): count for index, count in rows})


def durations(eng: Engine, win: Window) -> list[dict[str, Any]]:
    """Per type, the run time of the jobs that ended in the window after running: count, p50 and p95."""
    query = (
        select(Job.type, Job.started_at, Job.finished_at)
        .where(Job.finished_at >= win.start, Job.finished_at < win.end, Job.worker.is_not(None), *win.jobs())
        .where(Job.started_at.is_not(None))
        .order_by(Job.finished_at.desc())
        .limit(SAMPLE)
    )
    with eng.connect() as conn:
        return _spread(conn.execute(query), ("type",))


def queue_waits(eng: Engine, win: Window) -> list[dict[str, Any]]:
    """Per type and queue, creation to start of the jobs that started in the window on their first attempt.

    Jobs with parents are left out: they wait for them, not for the queue.
    """
    recent = or_(Job.finished_at >= win.start, status_in(NOT_ENDED))
    query = (
        select(Job.type, Job.queue, Job.created_at, Job.started_at)
        .where(recent, Job.started_at >= win.start, Job.started_at < win.end, *win.jobs())
        .where(Job.attempts == 1, Job.on_parent_failure.is_(None))
        .order_by(Job.started_at.desc())
        .limit(SAMPLE)
    )
    with eng.connect() as conn:
        return _spread(conn.execute(query), ("type", "queue"))


def _spread(rows: Iterable[Any], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of (*group, start, end) → one dict per group: its names, count, p50_seconds, p95_seconds.

    The time between is taken here, to the microsecond: SQLite's julianday() is some 50 µs off.
    """
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    for *group, start, end in rows:
        groups[tuple(group)].append(max((end - start).total_seconds(), 0.0))  # hosts' clocks may differ a little
    found = []
    for group, values in sorted(groups.items()):
        values.sort()
        found.append(
            {
                **dict(zip(names, group, strict=True)),
                "count": len(values),
                "p50_seconds": round(percentile(values, 0.5), 3),
                "p95_seconds": round(percentile(values, 0.95), 3),
            }
        )
    return found


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Linear between the two nearest ranks, as PostgreSQL's percentile_cont."""
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def queues(eng: Engine, projects: Sequence[str] | None) -> dict[str, dict[str, int]]:
    """Jobs queued and running now, per queue."""
    query = select(Job.queue, Job.status, func.count()).where(
        status_in([JobStatus.QUEUED, JobStatus.RUNNING]), *of_projects(projects)
    )
    found: dict[str, dict[str, int]] = defaultdict(lambda: {"queued": 0, "running": 0})
    with eng.connect() as conn:
        for queue, status, count in conn.execute(query.group_by(Job.queue, Job.status)):
            found[queue][JobStatus(status).value] = count
    return dict(found)


def by_type_status(eng: Engine, win: Window) -> dict[str, dict[str, int]]:
    """Jobs created in the window, per type and current status."""
    # Bounded on both sides, or SQLite walks a whole index in GROUP BY order instead.
    query = select(Job.type, Job.status, func.count()).where(Job.created_at >= win.start, Job.created_at < win.end)
    query = query.where(*win.jobs())
    found: dict[str, dict[str, int]] = defaultdict(dict)
    with eng.connect() as conn:
        for type_, status, count in conn.execute(query.group_by(Job.type, Job.status)):
            found[type_][JobStatus(status).value] = count
    return dict(sorted(found.items()))


def top_failures(eng: Engine, win: Window) -> list[dict[str, Any]]:
    """The errors that ended most jobs as failed or timed out in the window, told apart by their last line."""
    query = (
        select(Job.id, Job.type, Job.error, Job.finished_at)
        .where(_off_index(Job.status).in_([JobStatus.FAILED, JobStatus.TIMED_OUT]), *win.jobs())
        .where(Job.finished_at >= win.start, Job.finished_at < win.end)
        .order_by(Job.finished_at.desc())
        .limit(SAMPLE)
    )
    groups: dict[str, dict[str, Any]] = {}
    with eng.connect() as conn:
        for job_id, type_, error, finished_at in conn.execute(query):  # newest first: the first seen is the last
            group = groups.setdefault(
                error_key(error), {"count": 0, "types": set(), "last_job_id": job_id, "last_at": finished_at}
            )
            group["count"] += 1
            group["types"].add(type_)
    ranked = sorted(groups.items(), key=lambda item: (-item[1]["count"], item[0]))[:TOP_FAILURES]
    return [{"error": key, **group, "types": sorted(group["types"])} for key, group in ranked]


def error_key(error: str | None) -> str:
    """What two failures with the same cause share: the error's last line (an exception's), ids and numbers out."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    key = lines[-1] if lines else "(no error text)"
    for pattern, replacement in VARYING:
        key = pattern.sub(replacement, key)
    return key[:ERROR_KEY_CHARACTERS]


def dashboard(eng: Engine, now: datetime, seconds: int, projects: Sequence[str] | None) -> dict[str, Any]:
    """GET /api/worker/stats: the window's ends per bucket, the queue's depth, run times, the queues now."""
    win = window(now, seconds, projects)
    return {
        "window": seconds,
        "bucket_seconds": win.bucket,
        "now": now,
        "finished": finished(eng, win),
        "queue_depth": waiting(eng, win, now),
        "durations": durations(eng, win),
        "queues": [{"queue": name, **counts} for name, counts in sorted(queues(eng, projects).items())],
    }


def report(eng: Engine, now: datetime, hours: int, projects: Sequence[str] | None) -> dict[str, Any]:
    """The daily report's figures for the `hours` before now."""
    win = Window(now - timedelta(hours=hours), now, hours * 3600, projects)
    return {
        "window_hours": hours,
        "since": win.start,
        "until": now,
        "by_type_status": by_type_status(eng, win),
        "durations": durations(eng, win),
        "top_failures": top_failures(eng, win),
        "queue_waits": queue_waits(eng, win),
    }
