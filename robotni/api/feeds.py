"""One reader per API process for all its live streams: N open streams cost a few reads per interval, not N.

A thread reads, every POLL_SECONDS and only while streams are open, the versions of the jobs being followed (one
read by key for all of them) and, for those that moved, the row, its new events and its new log once; with
project streams open, the new events of every project. It keeps the recent ones and wakes the streams they
concern. A stream takes what came after its own cursor from here; one that is further behind than what is kept
(a resume from long ago, a log read from its start) reads the store itself until it has caught up. Every read is
a short transaction: no stream and no idle reader holds a database connection between events. The cursor over all
projects' events moves in commit order (robotni/api/commit_order.py): a stream reading the store reads up to it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from robotni.api import commit_order
from robotni.api.commit_order import CommitOrder
from robotni.store import events, queries
from robotni.store.events import JOB_EVENT_PREFIX
from robotni.store.models import Event, Job

log = logging.getLogger(__name__)
# How stale a stream's news may be: the reader's interval, whatever the number of streams.
POLL_SECONDS = 0.5
# What is kept for streams to take: a job's newest events and log bytes, the newest events of all projects.
# A stream further behind reads the store itself.
KEPT_JOB_EVENTS = 50
KEPT_LOG_BYTES = 64 * 1024
KEPT_EVENTS = 1000
# Events read per query while the reader catches up with a burst.
READ_BATCH = 500
# Streams woken at once, and the time over which the reader spreads waking all of them: hundreds of threads woken
# together would keep the other requests of the process waiting for the interpreter meanwhile.
WAKE_BATCH = 8
WAKE_SPREAD_SECONDS = 0.2


@dataclass
class JobNews:
    """What a job stream may send: the job as last read (None: removed), its events after the stream's cursor,
    its log from the stream's offset; complete when no event after these was stored when the job was read."""

    job: Job | None
    events: list[Event]
    log: bytes
    complete: bool


@dataclass
class JobFeed:
    """A followed job: every event with id in (floor, cursor], the log bytes [log_start, log_start + len(log))."""

    waiters: set[threading.Event] = field(default_factory=set)
    ready: bool = False  # read once
    job: Job | None = None
    events: list[Event] = field(default_factory=list)
    floor: int = 0
    cursor: int = 0
    log: bytes = b""
    log_start: int = 0

    def news(self, cursor: int, offset: int) -> JobNews | None:
        """What follows a stream's position, or None when the position is older than what is kept."""
        if not self.ready or cursor < self.floor or offset < self.log_start:
            return None
        newer = [event for event in self.events if event.id > cursor]
        return JobNews(self.job, newer, self.log[offset - self.log_start :], complete=True)

    def absorb(self, job: Job | None, found: list[Event], log_bytes: bytes, log_from: int) -> None:
        """Keep what the reader found (log_bytes start at log_from)."""
        self.ready, self.job = True, job
        self.events += found
        if found:
            self.cursor = found[-1].id
        if len(self.events) > KEPT_JOB_EVENTS:
            dropped, self.events = self.events[:-KEPT_JOB_EVENTS], self.events[-KEPT_JOB_EVENTS:]
            self.floor = dropped[-1].id
        if log_from != self.log_start + len(self.log):  # a gap: more arrived than is kept
            self.log, self.log_start = b"", log_from
        self.log = (self.log + log_bytes)[-KEPT_LOG_BYTES:]
        self.log_start = log_from + len(log_bytes) - len(self.log)


@dataclass
class ProjectFeed:
    """Every job event with id in (floor, cursor]; a stream filters its projects. Every id up to cursor has
    committed or was given up (order)."""

    waiters: dict[threading.Event, frozenset[str] | None] = field(default_factory=dict)
    ready: bool = False
    events: list[Event] = field(default_factory=list)
    floor: int = 0
    cursor: int = 0
    order: CommitOrder = field(default_factory=CommitOrder)


class Reader:
    """The process's reader thread and what it keeps; streams register a threading.Event it sets on news."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wanted = threading.Condition(self.lock)
        self.jobs: dict[str, JobFeed] = {}
        self.projects = ProjectFeed()
        self.thread: threading.Thread | None = None
        self.failing = False

    # --- streams ------------------------------------------------------------------------------------------

    def follow_job(self, job_id: str, waiter: threading.Event) -> None:
        with self.lock:
            self.jobs.setdefault(job_id, JobFeed()).waiters.add(waiter)
            self._start()

    def leave_job(self, job_id: str, waiter: threading.Event) -> None:
        with self.lock:
            feed = self.jobs.get(job_id)
            if feed is not None:
                feed.waiters.discard(waiter)
                if not feed.waiters:
                    del self.jobs[job_id]

    def job_news(self, job_id: str, cursor: int, offset: int) -> JobNews | None:
        with self.lock:
            feed = self.jobs.get(job_id)
            return None if feed is None else feed.news(cursor, offset)

    def follow_projects(self, projects: list[str] | None, waiter: threading.Event) -> None:
        with self.lock:
            self.projects.waiters[waiter] = None if projects is None else frozenset(projects)
            self._start()

    def leave_projects(self, waiter: threading.Event) -> None:
        with self.lock:
            self.projects.waiters.pop(waiter, None)
            if not self.projects.waiters:
                self.projects = ProjectFeed()

    def project_news(self, projects: list[str] | None, cursor: int) -> tuple[list[Event] | None, int | None]:
        """(events of the projects after cursor, None), or (None, the newest id kept) for a stream behind them, up
        to which it may read the store itself; (None, None) before the first read."""
        with self.lock:
            feed = self.projects
            if not feed.ready or cursor < feed.floor:
                return None, feed.cursor if feed.ready else None
            return [e for e in feed.events if e.id > cursor and (projects is None or e.project in projects)], None

    def project_start(self) -> int | None:
        """Where a project stream from now starts, when the reader runs: its cursor, which every commit still to
        come is past (the newest id stored may not be)."""
        with self.lock:
            return self.projects.cursor if self.projects.ready else None

    # --- the reader thread --------------------------------------------------------------------------------

    def _start(self) -> None:
        """Under the lock: wake the thread (started at the first stream of this process)."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="robotni-stream-reader", daemon=True)
            self.thread.start()
        self.wanted.notify()

    def _run(self) -> None:
        while True:
            with self.lock:
                self.wanted.wait_for(lambda: bool(self.jobs or self.projects.waiters))
            started = time.monotonic()
            try:
                woken = list(self.read_jobs() | self.read_projects())
                if self.failing:
                    log.info("live streams: reading the store again")
                self.failing = False
            except Exception:  # the store is away a moment: the streams wait, the next read catches up
                if not self.failing:  # said once, not twice a second while it lasts
                    log.exception("live streams: reading the store failed; trying again every %s s", POLL_SECONDS)
                self.failing, woken = True, []
            batches = range(0, len(woken), WAKE_BATCH)
            for start in batches:
                for waiter in woken[start : start + WAKE_BATCH]:
                    waiter.set()
                time.sleep(WAKE_SPREAD_SECONDS / len(batches))
            time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - started)))

    def read_jobs(self) -> set[threading.Event]:
        """Read the followed jobs that moved; the waiters of those with news."""
        with self.lock:
            known = {job_id: feed.job.version if feed.job else None for job_id, feed in self.jobs.items()}
        if not known:
            return set()
        now = queries.versions(list(known))
        # A feed not read yet, a job removed by the retention, or a new version.
        moved = [job_id for job_id, version in known.items() if version is None or now.get(job_id) != version]
        rows = {job.id: job for job in queries.by_ids(moved)} if moved else {}
        woken: set[threading.Event] = set()
        for job_id in moved:
            woken |= self._read_job(job_id, rows.get(job_id))
        return woken

    def _read_job(self, job_id: str, job: Job | None) -> set[threading.Event]:
        with self.lock:
            feed = self.jobs.get(job_id)
            if feed is None:
                return set()
            ready, cursor, log_end = feed.ready, feed.cursor, feed.log_start + len(feed.log)
        if job is not None and not ready:  # from now on: what a stream needs of the past it reads itself
            start = events.last_of(job_id)
            found, log_from, log_bytes = [], job.log_bytes, b""
        else:
            start = None
            found = [] if job is None else events.after(job_id, None, cursor, KEPT_JOB_EVENTS)
            log_from = max(log_end, (job.log_bytes if job else 0) - KEPT_LOG_BYTES)
            shipped = job is not None and job.log_bytes > log_from
            log_bytes = queries.output_of(job_id, log_from, job.log_bytes - log_from) if job and shipped else b""
        with self.lock:
            if self.jobs.get(job_id) is not feed:  # its streams left meanwhile (and maybe new ones came)
                return set()
            if start is not None:
                feed.floor = feed.cursor = start
            feed.absorb(job, found, log_bytes, log_from)
            return set(feed.waiters)

    def read_projects(self) -> set[threading.Event]:
        """Read the new events of every project; the waiters of the projects they concern."""
        with self.lock:
            feed = self.projects
            if not feed.waiters:
                return set()
            ready, cursor = feed.ready, feed.cursor
        if not ready:
            start, found = commit_order.start(), []
        else:
            start, found = cursor, self._events_after(feed.order, cursor)
        with self.lock:
            if self.projects is not feed:  # every project stream left meanwhile
                return set()
            if not ready:
                feed.ready, feed.floor, feed.cursor = True, start, start
            if found:  # of any type: a schedule.failed event's id is no gap either
                feed.cursor = max(feed.cursor, found[-1].id)
            found = [event for event in found if event.type.startswith(JOB_EVENT_PREFIX)]
            feed.events += found
            if len(feed.events) > KEPT_EVENTS:
                feed.floor, feed.events = feed.events[-KEPT_EVENTS - 1].id, feed.events[-KEPT_EVENTS:]
            if not ready:  # streams behind the first read now know how far to read the store themselves
                return set(feed.waiters)
            concerned = {event.project for event in found}
            return {w for w, projects in feed.waiters.items() if projects is None or projects & concerned}

    @staticmethod
    def _events_after(order: CommitOrder, cursor: int) -> list[Event]:
        """The events past cursor that may go out now, of any type."""
        found: list[Event] = []
        while True:
            batch = events.every_after(cursor, READ_BATCH)
            found += order.deliverable(cursor, batch, time.monotonic())
            if len(batch) < READ_BATCH or order.holding():
                return found
            cursor = batch[-1].id


reader = Reader()
