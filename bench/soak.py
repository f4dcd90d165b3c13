"""Soak: many fakejob jobs, random cancels, a worker SIGKILLed every 20 s; nothing may be lost or overlap.

`python -m bench.soak [--jobs 10000] [--kill-every 20] [--concurrency 4]` on the embedded default. It prints
accepted, terminal by status, lost (accepted but not terminal at the end) and overlapping attempts (two attempts
of one job whose running times intersect). Loopback only; bounded by --deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import random
import signal
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from sqlalchemy import create_engine, select

from robotni.store.models import Attempt, Job
from tests.stack import TERMINAL, Stack, wait_until

# Short beats so a killed worker's leases expire in 7.5 s, not 15.
SOAK_ENV = {"ROBOTNI_HEARTBEAT_SECONDS": "0.5", "ROBOTNI_KILL_GRACE": "1"}
CANCEL_SHARE = 0.05


def submit_all(stack: Stack, count: int, accepted: list[str], stop: threading.Event) -> None:
    local = threading.local()

    def one(_):
        if stop.is_set():
            return
        if not hasattr(local, "session"):
            local.session = requests.Session()
        body = {"type": "fakejob", "params": {"delay_seconds": round(random.uniform(0, 2), 2)}}
        response = local.session.post(stack.api("/jobs"), json=body, timeout=30)
        if response.status_code == 202:
            accepted.append(response.json()["id"])
            if random.random() < CANCEL_SHARE:
                threading.Timer(random.uniform(0, 3), cancel, (stack, response.json()["id"])).start()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(count)))


def cancel(stack: Stack, job_id: str) -> None:
    requests.delete(stack.api(f"/jobs/{job_id}"), timeout=30)


def killer(stack: Stack, every: float, concurrency: int, stop: threading.Event, kills: list[float]) -> None:
    for n in itertools.count(1):
        if stop.wait(every):
            return
        worker = next(p for p in reversed(stack.processes) if p.name.startswith("worker-"))
        worker.signal(signal.SIGKILL)
        worker.popen.wait()
        kills.append(time.monotonic())
        stack.start_worker(f"soak{n}", concurrency=concurrency)


def overlapping(attempts: list[Attempt]) -> int:
    by_job: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        by_job.setdefault(attempt.job_id, []).append(attempt)
    clashes = 0
    for runs in by_job.values():
        runs.sort(key=lambda a: a.started_at or a.finished_at)
        clashes += sum(1 for a, b in itertools.pairwise(runs) if b.started_at and b.started_at < a.finished_at)
    return clashes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--kill-every", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--deadline", type=float, default=3600.0, help="seconds for the whole run")
    args = parser.parse_args()

    stack = Stack(Path(tempfile.mkdtemp(prefix="robotni-soak-")), SOAK_ENV)
    store = create_engine(f"sqlite:///{stack.data_dir / 'robotni.db'}")
    accepted: list[str] = []
    kills: list[float] = []
    stop = threading.Event()
    started = time.monotonic()
    try:
        stack.start_web()
        stack.start_worker("soak0", concurrency=args.concurrency)
        chaos = threading.Thread(target=killer, args=(stack, args.kill_every, args.concurrency, stop, kills))
        chaos.start()
        submit_all(stack, args.jobs, accepted, stop)

        def open_jobs() -> int:
            with store.connect() as conn:
                rows = conn.execute(select(Job.status)).scalars()
                return sum(1 for status in rows if status not in TERMINAL)

        remaining = args.deadline - (time.monotonic() - started)
        with contextlib.suppress(AssertionError):  # what is still open at the deadline is reported as lost
            wait_until(lambda: open_jobs() == 0, max(remaining, 1), "every job to end", every=2)
        stop.set()
        chaos.join()
        with store.connect() as conn:
            statuses = dict(conn.execute(select(Job.id, Job.status)).all())
            attempts = list(conn.execute(select(Attempt)).all())
    finally:
        stop.set()
        stack.stop()
    terminal = Counter(status for status in statuses.values() if status in TERMINAL)
    lost = sum(1 for job_id in accepted if statuses.get(job_id) not in TERMINAL)
    print(f"| accepted | {len(accepted)} |\n|---|---|")
    for status, count in sorted(terminal.items()):
        print(f"| {status} | {count} |")
    print(f"| lost (not terminal at the end) | {lost} |")
    # fakejob only sleeps: a failed one failed because of its worker, the broker or the store, never the script.
    print(f"| failed by infrastructure | {terminal.get('failed', 0)} |")
    print(f"| overlapping attempts | {overlapping(attempts)} |")
    print(f"| worker SIGKILLs | {len(kills)} |")
    print(f"| wall time | {time.monotonic() - started:.0f} s |")


if __name__ == "__main__":
    main()
