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

import requests

CLIENTS = 2
TERMINAL = {"completed", "failed", "cancelled", "timed_out"}


@dataclass
class Seen:
    latencies_ms: list[float] = field(default_factory=list)
    first_post: float = float("inf")
    last_seen: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, posted: float, seen: float) -> None:
        with self.lock:
            self.latencies_ms.append((seen - posted) * 1000)
            self.first_post, self.last_seen = min(self.first_post, posted), max(self.last_seen, seen)


def _client(api: Callable[[str], str], count: int, window: int, poll: float, seen: Seen) -> None:
    session = requests.Session()
    pending: dict[str, tuple[float, str]] = {}  # job id -> (POST time, last ETag)
    sent = 0
    try:
        while sent < count or pending:
            while sent < count and len(pending) < window:
                posted = time.perf_counter()
                answer = session.post(api("/jobs"), json={"type": "noop"}, timeout=30)
                assert answer.status_code == 202, answer.text
                pending[answer.json()["id"]] = (posted, "")
                sent += 1
            time.sleep(poll)
            for job_id, (posted, etag) in list(pending.items()):
                answer = session.get(
                    api(f"/jobs/{job_id}"), headers={"If-None-Match": etag} if etag else {}, timeout=30
                )
                if answer.status_code == 304:
                    continue
                status = answer.json()["status"]
                if status == "completed":
                    seen.add(posted, time.perf_counter())
                    del pending[job_id]
                else:
                    assert status not in TERMINAL, answer.text
                    pending[job_id] = (posted, answer.headers.get("ETag", ""))
    finally:
        session.close()


def run(api: Callable[[str], str], jobs: int, window: int, poll: float) -> tuple[float, list[float]]:
    """(jobs/s as the clients saw them, each job's POST -> seen completed in ms)."""
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
    return jobs / (seen.last_seen - seen.first_post), seen.latencies_ms
