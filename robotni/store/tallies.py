"""Job counts for /metrics, read from the job store: the same in every process and on every host, cheap at any size.

A job has a finished_at exactly when it has ended (robotni/store/jobs.py sets it with every terminal status, and
nothing moves a job out of one), and an ended job never changes again. So once it has settled (ended more
than `SETTLE_SECONDS` ago) it is added, once, to the running totals in the `metric_totals` table, and the
watermark moves past it. A scrape reads the totals and only the rows the watermark has not passed: jobs not
ended (index on status) and jobs that ended in the last few minutes (index on finished_at); a full scan
never happens after the first rollup. Totals keep counting jobs that retention cleanup has since removed,
so the counters never go down.

A rollup is a compare-and-set on the watermark row, so of several processes scraping at once one adds each
job; the others find the watermark moved and leave it. Totals and watermark are read in one statement and
the rows above that watermark in one more; rows below it never change, so the two always agree.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Select,
    and_,
    case,
    func,
    insert,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError

from robotni.status import NOT_ENDED, JobStatus
from robotni.store.jobs import status_in
from robotni.store.models import Job, MetricTotal, utcnow
from robotni.store.stats import elapsed

log = logging.getLogger(__name__)
# A job counts as settled this long after it ended: far beyond a write's wait for the SQLite lock (10 s by
# default) and clock differences between hosts, so no row can still appear below the watermark.
SETTLE_SECONDS = 300
# The watermark moves at most this often: one small write a minute, whatever the number of scrapers.
ROLLUP_EVERY_SECONDS = 60
# Job durations, seconds (the histogram's `le`). Totals are kept per bucket: changing these needs the
# metric_totals table emptied (the counters then start again from the rows still in the store).
BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)
WATERMARK = ("", "", "watermark")
END_OF_TIME = datetime(9999, 1, 1)


@dataclass
class Tally:
    """Jobs of one type in one status; `timed` of them ran and ended while running, taking `seconds` in all."""

    jobs: int = 0
    timed: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))  # cumulative: duration <= le

    def add(self, values: dict[str, float]) -> None:
        self.jobs += int(values.get("jobs", 0))
        self.timed += int(values.get("timed", 0))
        self.seconds += float(values.get("seconds", 0.0))
        for i, bound in enumerate(BUCKETS):
            self.buckets[i] += int(values.get(_bucket_name(bound), 0))

    def merge(self, other: Tally) -> None:
        self.jobs += other.jobs
        self.timed += other.timed
        self.seconds += other.seconds
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]


@dataclass
class Snapshot:
    tallies: dict[tuple[str, str], Tally]  # (type, status): every job ever accepted, ended or not
    queued: dict[str, int]  # per queue
    running: dict[str, int]  # per type
    scheduled: dict[str, int]  # per type: waiting for a retry or a deferred start


def _bucket_name(bound: float) -> str:
    return f"le:{bound:g}"


def _epoch(moment: datetime) -> float:
    return moment.replace(tzinfo=UTC).timestamp()


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def _seconds(dialect: str) -> ColumnElement[Any]:
    """The run time of the attempt that ended the job, in SQL; negative (hosts' clocks differ) counts as 0."""
    raw = elapsed(Job.started_at, Job.finished_at, dialect)
    # worker is cleared whenever a job goes back to waiting: set on an ended job, it ended while running.
    timed = and_(Job.worker.is_not(None), Job.started_at.is_not(None), Job.finished_at.is_not(None))
    return case((and_(timed, raw < 0), 0.0), (timed, raw), else_=null())


def _aggregate(where: Sequence[ColumnElement[bool]], dialect: str) -> Select[*tuple[Any, ...]]:
    """type, queue, status, jobs, timed, seconds and one count per bucket, over the rows matching where."""
    inner = select(Job.type, Job.queue, Job.status, _seconds(dialect).label("d")).where(*where).subquery()
    d = inner.c.d
    return select(
        inner.c.type,
        inner.c.queue,
        inner.c.status,
        func.count().label("jobs"),
        func.count(d).label("timed"),
        func.coalesce(func.sum(d), 0.0).label("seconds"),
        *(func.sum(case((d <= bound, 1), else_=0)).label(_bucket_name(bound)) for bound in BUCKETS),
    ).group_by(inner.c.type, inner.c.queue, inner.c.status)


def _values(row: Row[*tuple[Any, ...]]) -> dict[str, float]:
    """The counts of an aggregate row (PostgreSQL sums durations as numeric: made float here)."""
    return {k: float(v or 0) for k, v in row._mapping.items() if k not in ("type", "queue", "status")}


def _key(type_: str, status: str, name: str) -> ColumnElement[bool]:
    return and_(MetricTotal.type == type_, MetricTotal.status == status, MetricTotal.name == name)


def read_totals(eng: Engine) -> tuple[dict[tuple[str, str], Tally], float | None]:
    """The rolled-up tallies and the watermark (epoch seconds; None before the first rollup), as one read."""
    with eng.connect() as conn:
        rows = conn.execute(select(MetricTotal.type, MetricTotal.status, MetricTotal.name, MetricTotal.value)).all()
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    watermark = None
    for type_, status, name, value in rows:
        if (type_, status, name) == WATERMARK:
            watermark = value
        else:
            tallies[type_, status].add({name: value})
    return tallies, watermark


def settle_seconds(retention_days: float) -> float:
    """SETTLE_SECONDS, or less when retention is shorter: a job must be rolled up before cleanup removes it."""
    return min(SETTLE_SECONDS, retention_days * 86400 / 2)


def rollup(eng: Engine, now: datetime | None = None, settle: float = SETTLE_SECONDS) -> bool:
    """Add the jobs that settled since the watermark to the totals and move it; False when nothing was due."""
    _, watermark = read_totals(eng)
    target = float(int(_epoch((now or utcnow()) - timedelta(seconds=settle))))
    if watermark is not None and target - watermark < ROLLUP_EVERY_SECONDS:
        return False
    settled = [Job.finished_at < _moment(target)]
    if watermark is not None:
        settled.append(Job.finished_at >= _moment(watermark))
    # Read before the write transaction: SQLite's write lock is held only for the small update below.
    with eng.connect() as conn:
        found = conn.execute(_aggregate(settled, eng.dialect.name)).all()
    try:
        with eng.begin() as conn:
            if not _move_watermark(conn, watermark, target):
                return False  # another process rolled these up
            _add(conn, found)
    except IntegrityError:  # two first rollups at once: the other one won
        return False
    return True


def _move_watermark(conn: Connection, old: float | None, new: float) -> bool:
    if old is None:
        conn.execute(insert(MetricTotal).values(type="", status="", name="watermark", value=new))
        return True
    moved = conn.execute(update(MetricTotal).where(_key(*WATERMARK), MetricTotal.value == old).values(value=new))
    return moved.rowcount == 1


def _add(conn: Connection, found: Sequence[Row[*tuple[Any, ...]]]) -> None:
    deltas: dict[tuple[str, str, str], float] = defaultdict(float)
    for row in found:  # one row per queue too: a type's queue may have changed over time
        for name, value in _values(row).items():
            deltas[row.type, row.status, name] += value
    stored = select(MetricTotal.type, MetricTotal.status, MetricTotal.name)
    existing = {tuple(key) for key in conn.execute(stored.where(MetricTotal.type.in_({k[0] for k in deltas})))}
    for key, value in deltas.items():
        if not value:
            continue
        if key in existing:
            conn.execute(update(MetricTotal).where(_key(*key)).values(value=MetricTotal.value + value))
        else:
            conn.execute(insert(MetricTotal).values(type=key[0], status=key[1], name=key[2], value=value))


def _live(eng: Engine, watermark: float | None) -> Sequence[Row[*tuple[Any, ...]]]:
    """Rows the watermark has not passed: not ended yet, or ended at or after it."""
    # Bounded on both sides, so SQLite's planner (which has no statistics) takes the finished_at index
    # rather than scanning the table in type order for the GROUP BY.
    recent = [Job.finished_at >= _moment(watermark or 0), Job.finished_at < END_OF_TIME]
    dialect = eng.dialect.name
    statement = union_all(
        _aggregate([status_in(NOT_ENDED), Job.finished_at.is_(None)], dialect),
        _aggregate(recent, dialect),
    )
    with eng.connect() as conn:
        return conn.execute(statement).all()


def snapshot(eng: Engine, now: datetime | None = None, settle: float = SETTLE_SECONDS) -> Snapshot:
    """Every job by type and status (totals plus live rows), and the waiting and running ones."""
    try:
        rollup(eng, now, settle)
    except Exception:  # a locked or busy store: this scrape reads more live rows, the next one rolls up
        log.warning("metrics rollup skipped", exc_info=True)
    tallies, watermark = read_totals(eng)
    result = Snapshot(tallies, defaultdict(int), defaultdict(int), defaultdict(int))
    for row in _live(eng, watermark):
        tallies[row.type, row.status].add(_values(row))
        if row.status == JobStatus.QUEUED:
            result.queued[row.queue] += row.jobs
        elif row.status == JobStatus.RUNNING:
            result.running[row.type] += row.jobs
        elif row.status == JobStatus.SCHEDULED:
            result.scheduled[row.type] += row.jobs
    return result
