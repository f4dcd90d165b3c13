"""The user's view: clients POST no-op jobs over HTTP while the worker runs, and see them complete through the API.

The drains start with a full queue and no submit in flight, the kindest case. Here CLIENTS clients each keep
--user-window jobs in flight: each POSTs until it has that many, then asks about each of its jobs every
--user-poll seconds with `If-None-Match` (a 304 while nothing changed), and POSTs the next when one completed.
The rate runs from the first POST to the last completion a client saw; a job's latency from just before its POST
to the answer that showed it `completed`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

CLIENTS = 2
PHASES = (
    "the POST's answer",
    "the API's insert -> started",
    "started -> finished",
    "finished -> seen",
)
TERMINAL = {"completed", "failed", "cancelled", "timed_out"}


@dataclass
class Seen:
    """Each job's wall-clock times (epoch seconds, comparable with the store's timestamps): POST sent, its answer,
    and the answer that showed it completed."""

    times: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, job_id: str, posted: float, answered: float, seen: float) -> None:
        with self.lock:
            self.times[job_id] = (posted, answered, seen)

    def rate(self) -> float:
        """Jobs/s from the first POST to the last completion a client saw."""
        first = min(posted for posted, _, _ in self.times.values())
        last = max(seen for _, _, seen in self.times.values())
        return len(self.times) / (last - first)

    def latencies_ms(self) -> list[float]:
        return [(seen - posted) * 1000 for posted, _, seen in self.times.values()]

    def phases_ms(self, stored: dict[str, tuple[datetime, datetime, datetime]]) -> dict[str, list[float]]:
        """Where each job's POST -> seen went, with the store's created_at (the API, before its insert),
        started_at and finished_at of each job: a phase's values in ms."""
        phases: dict[str, list[float]] = {phase: [] for phase in PHASES}
        for job_id, (posted, answered, seen) in self.times.items():
            created, started, finished = (_epoch(moment) for moment in stored[job_id])
            for phase, ms in zip(
                PHASES, (answered - posted, started - created, finished - started, seen - finished), strict=True
            ):
                phases[phase].append(ms * 1000)
        return phases


def _epoch(moment: datetime) -> float:
    """SQLite gives naive datetimes (UTC), PostgreSQL aware ones."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _client(api: Callable[[str], str], count: int, window: int, poll: float, seen: Seen) -> None:
    session = requests.Session()
    pending: dict[str, tuple[float, float, str]] = {}  # job id -> (POST sent, its answer, last ETag)
    sent = 0
    try:
        while sent < count or pending:
            while sent < count and len(pending) < window:
                posted = time.time()
                answer = session.post(api("/jobs"), json={"type": "noop"}, timeout=30)
                assert answer.status_code == 202, answer.text
                pending[answer.json()["id"]] = (posted, time.time(), "")
                sent += 1
            time.sleep(poll)
            for job_id, (posted, answered, etag) in list(pending.items()):
                answer = session.get(
                    api(f"/jobs/{job_id}"), headers={"If-None-Match": etag} if etag else {}, timeout=30
                )
                if answer.status_code == 304:
                    continue
                status = answer.json()["status"]
                if status == "completed":
                    seen.add(job_id, posted, answered, time.time())
                    del pending[job_id]
                else:
                    assert status not in TERMINAL, answer.text
                    pending[job_id] = (posted, answered, answer.headers.get("ETag", ""))
    finally:
        session.close()


def run(api: Callable[[str], str], jobs: int, window: int, poll: float) -> Seen:
    """Each job's times as its client saw them."""
    seen = Seen()
    errors: list[BaseException] = []

    def client(count: int) -> None:
        try:
            _client(api, count, window, poll, seen)
        except BaseException as exc:  # reported after the join, in the benchmark's thread
            errors.append(exc)

    shares = [jobs // CLIENTS + (n < jobs % CLIENTS) for n in range(CLIENTS)]
    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    if errors:
        raise errors[0]
    return seen
