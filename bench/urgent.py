"""Start delay of an urgent job behind a backlog of batch jobs: `python -m bench.urgent` (a few minutes).

Per stack (embedded; Redis + PostgreSQL when they answer on this machine), one worker with 2 pool processes and
`fakejob` jobs of 0.2 s:

- --rounds urgent jobs on the idle worker, one at a time: submit -> start, what an urgent job costs anyway;
- then --backlog batch jobs submitted from 8 clients, and while they drain, --rounds urgent jobs one after the
  other: each one's submit -> start, and how many batch jobs started in between (the promise: at most one per
  pool process, as a new job only waits for a free pool process).

Submit -> start is the job's created_at -> started_at, as stored. Loopback only, every wait bounded.
"""

from __future__ import annotations

import argparse
import os
import statistics
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import requests
from sqlalchemy import create_engine, func, select

os.environ.setdefault("ROBOTNI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
os.environ.setdefault("ROBOTNI_TEST_REDIS_URL", "redis://127.0.0.1:6379")

# After the test URLs: tests.backends reads them at import.
from bench.fresh import stack_on
from robotni.status import JobStatus, Priority
from robotni.store.models import Job
from tests.stack import Stack

STACKS = {"embedded": "embedded (SQLite, filesystem broker)", "redis": "Redis + PostgreSQL"}
JOB = {"type": "fakejob", "params": {"delay_seconds": 0.2}}
POOL_PROCESSES = 2
SUBMITTERS = 8


def _urgent(stack: Stack) -> dict:
    job = stack.submit(**JOB, priority="urgent")
    return stack.wait_for(job["id"], ("running", "completed"), timeout=120)


def _delay(job: dict) -> float:
    return (datetime.fromisoformat(job["started_at"]) - datetime.fromisoformat(job["created_at"])).total_seconds()


def _submit_backlog(stack: Stack, count: int) -> None:
    def post(_: int) -> None:
        response = requests.post(stack.api("/jobs"), json={**JOB, "priority": "batch"}, timeout=60)
        assert response.status_code == 202, response.text

    with ThreadPoolExecutor(SUBMITTERS) as pool:
        list(pool.map(post, range(count)))


def measure(name: str, args: argparse.Namespace) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"idle": [], "behind": [], "between": [], "left": [], "batch": []}
    with stack_on(name, "urgent") as stack:
        stack.start_web()
        stack.start_worker("w", concurrency=POOL_PROCESSES)
        store = create_engine(stack.env.get("ROBOTNI_DATABASE_URL", f"sqlite:///{stack.data_dir / 'robotni.db'}"))
        found["idle"] = [_delay(_urgent(stack)) for _ in range(args.rounds)]
        _submit_backlog(stack, args.backlog)
        batch = [Job.priority == Priority.BATCH]
        for _ in range(args.rounds):
            job = _urgent(stack)
            # The store keeps naive UTC.
            created, started = (
                datetime.fromisoformat(job[at]).replace(tzinfo=None) for at in ("created_at", "started_at")
            )
            with store.connect() as conn:
                between = select(func.count()).where(*batch, Job.started_at > created, Job.started_at < started)
                left = select(func.count()).where(*batch, Job.status == JobStatus.QUEUED)
                found["between"].append(conn.execute(between).scalar_one())
                found["left"].append(conn.execute(left).scalar_one())
            found["behind"].append(_delay(job))
        with store.connect() as conn:
            ran = select(Job.started_at, Job.finished_at).where(*batch, Job.status == JobStatus.COMPLETED)
            found["batch"] = [(end - start).total_seconds() for start, end in conn.execute(ran)]
        store.dispose()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stacks", nargs="+", default=list(STACKS), choices=list(STACKS))
    args = parser.parse_args()
    print(
        f"| stack | urgent, idle worker: submit -> start | urgent behind {args.backlog} batch: submit -> start "
        "| batch jobs started meanwhile | batch left waiting | a batch job's run |\n|---|---|---|---|---|---|"
    )
    for name in args.stacks:
        f = measure(name, args)
        print(
            f"| {STACKS[name]} | {statistics.median(f['idle']):.2f} s (max {max(f['idle']):.2f}) "
            f"| **{statistics.median(f['behind']):.2f} s** (max {max(f['behind']):.2f}) "
            f"| {', '.join(str(int(n)) for n in f['between'])} | {int(min(f['left']))} to {int(max(f['left']))} "
            f"| {statistics.median(f['batch']):.2f} s |"
        )


if __name__ == "__main__":
    main()
