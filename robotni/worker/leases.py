"""The leases of the jobs a worker process runs, kept by one thread for all of them.

Each beat it renews every running job's lease in one statement (robotni/store/jobs.py `renew`), records what a
client can see job by job where it changed (progress, new output), and raises a job's cancel flag when its cancel
mark is set or its lease is lost. A job's check_now (set by a `terminate`, robotni/worker/pool.py) wakes it at
once. One thread instead of one per job: a job's start and end no longer wait for a thread to start and stop.
No Celery here.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robotni import logsetup
from robotni.config import Settings
from robotni.runner.run import RunSpec
from robotni.store import jobs
from robotni.store.models import Job, LogChunk

log = logging.getLogger(__name__)
PROGRESS_MESSAGE_MAX = 500


class CheckNow(threading.Event):
    """Set by a `terminate` aimed at this worker: the keeper reads the cancel marks at once, not at its next beat."""

    def set(self) -> None:
        super().set()
        _keeper_wake.set()


# Set by any job's CheckNow; read by the keeper of this process.
_keeper_wake = threading.Event()


class Lease:
    """One running job as the keeper sees it: what a client has seen of it, and its output not yet in the store."""

    def __init__(self, job: Job, spec: RunSpec, check_now: threading.Event):
        self.job, self.spec, self.check_now = job, spec, check_now
        self.cancel = threading.Event()
        self.progress: dict[str, Any] | None = None
        self.written: dict[str, Any] = {"progress": None, "progress_message": None}
        # Earlier attempts on this host left their output in the file; the store has every attempt's output.
        self.log_from = _size(spec.log_path)
        self.shipped = job.log_bytes

    def report_progress(self, report: dict[str, Any]) -> None:
        values = _progress_values(report)
        if values is not None:
            self.progress = values

    def unshipped(self) -> LogChunk | None:
        """The output written since the last shipped byte, as the store's next chunk."""
        shipped_here = self.shipped - self.job.log_bytes
        try:
            with open(self.spec.log_path, "rb") as f:
                f.seek(self.log_from + shipped_here)
                data = f.read()
        except FileNotFoundError:  # no output yet: the runner makes the file with the first
            return None
        return LogChunk(job_id=self.job.id, start=self.shipped, data=data) if data else None

    def pending(self) -> tuple[dict[str, Any], LogChunk | None] | None:
        """What changed since the last beat (progress, new output) and the chunk to ship; None when nothing did."""
        chunk = self.unshipped()
        current = dict(self.progress or {})
        if chunk is not None:
            current["log_bytes"] = chunk.start + len(chunk.data)
        changes = {k: v for k, v in current.items() if self.written.get(k) != v}
        return (changes, chunk) if changes else None

    def record(self, lease_seconds: float, changes: dict[str, Any], chunk: LogChunk | None) -> bool | None:
        """Write the changes with the lease: the cancel mark, or None when the lease is lost."""
        cancel = jobs.record_progress(self.job, lease_seconds, changes, chunk)
        self.written.update(changes)
        if chunk is not None and cancel is not None:
            self.shipped += len(chunk.data)
        return cancel

    def heard(self, cancel: bool | None) -> None:
        if cancel is None:
            log.warning("job %s: lease lost (reaped or requeued); stopping this attempt", self.job.id)
        if cancel is None or cancel:
            self.cancel.set()


class Keeper(threading.Thread):
    """This process's lease keeper: a beat every heartbeat_seconds, or at once when a job's check_now is set."""

    def __init__(self, settings: Settings):
        super().__init__(name="leases", daemon=True)
        self.settings = settings
        self.leases: dict[int, Lease] = {}
        # Held through a beat: a job leaving waits for it, so no beat writes for a job whose outcome is recorded.
        self.beating = threading.Lock()

    @contextmanager
    def kept(self, lease: Lease) -> Iterator[Lease]:
        with self.beating:
            self.leases[id(lease)] = lease
        if lease.check_now.is_set():  # a terminate before the lease was kept
            _keeper_wake.set()
        try:
            yield lease
        finally:
            with self.beating:
                del self.leases[id(lease)]

    def run(self) -> None:
        while True:
            _keeper_wake.wait(self.settings.heartbeat_seconds)
            _keeper_wake.clear()
            with self.beating:
                for lease in self.leases.values():
                    lease.check_now.clear()
                if self.leases:
                    self.beat(list(self.leases.values()))

    def beat(self, leases: list[Lease]) -> None:
        lease_seconds = self.settings.lease_seconds
        unchanged = []
        for lease in leases:
            with logsetup.about_job(lease.job):
                pending = lease.pending()
                if pending is None:
                    unchanged.append(lease)
                    continue
                try:
                    lease.heard(lease.record(lease_seconds, *pending))
                except Exception:  # a database hiccup must not kill the job; the next beat tries again
                    log.exception("job %s: lease renewal failed", lease.job.id)
        if not unchanged:
            return
        try:
            marks = jobs.renew([lease.job for lease in unchanged], lease_seconds)
        except Exception:
            log.exception("lease renewal of %d jobs failed", len(unchanged))
            return
        for lease in unchanged:
            with logsetup.about_job(lease.job):
                lease.heard(marks.get(lease.job.id))


_keeper: dict[int, Keeper] = {}  # by process id: a prefork pool process starts its own
_starting = threading.Lock()


def keeper(settings: Settings) -> Keeper:
    """This process's keeper, started with its first job."""
    with _starting:
        current = _keeper.get(os.getpid())
        if current is None:
            current = _keeper[os.getpid()] = Keeper(settings)
            current.start()
        return current


def _progress_values(report: dict[str, Any]) -> dict[str, Any] | None:
    fraction, message = report.get("fraction"), report.get("message")
    if isinstance(fraction, bool) or not isinstance(fraction, int | float | None):
        return None
    if message is not None and not isinstance(message, str):
        return None
    return {
        "progress": None if fraction is None else min(max(float(fraction), 0.0), 1.0),
        "progress_message": None if message is None else message[:PROGRESS_MESSAGE_MAX],
    }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
