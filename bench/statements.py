"""What a job costs the job store: `python -m bench.statements` (seconds; `--help` for the knobs).

In-process, no broker and no worker: --jobs no-op jobs are inserted, then each is taken the way a pool process
takes it (`claims.claim_next`, the claim with priorities and fair share) and ended (`jobs.finish`, with its
attempt and event), one after the other, on SQLite and on PostgreSQL (ROBOTNI_TEST_POSTGRES_URL, when it answers).
Printed per job: the SQL statements sent (by kind), the commits, the connection checkouts (each was a round trip
of its own while the engine pinged at checkout), and the wall and CPU time of the whole path. What a worker adds
around it (Celery, the job's process) is `python -m bench`'s.

`--instructions` counts instead the CPU instructions of a claim and end on SQLite (valgrind's callgrind, which
counts the same whatever else the machine runs: a shared machine's CPU times move by half between runs): this
process run twice under callgrind, with WARM and with WARM + --jobs claims, without the statement counting; the
difference over --jobs.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import Counter
from typing import Any

os.environ.setdefault("ROBOTNI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# After the test URL: tests.backends reads it at import.
from sqlalchemy import event

from bench.fresh import job_store
from robotni.status import JobStatus
from robotni.store import claims, creation, jobs
from tests import backends

JOB = {"type": "noop", "project": "bench", "params": {}, "queue": "default", "max_attempts": 1, "venv": None}
# Claims and ends before the counted ones, in both runs of --instructions: the first statements compile and cache.
WARM = 20


def measure(name: str, count: int) -> str:
    seen: Counter[str] = Counter()

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        words = sql.split()
        seen[" ".join(words[:3]) if words[0] != "UPDATE" else f"UPDATE {words[1]}"] += 1

    with job_store(name, "statements") as fresh:
        for _ in range(count):
            creation.create(**JOB)
        limits = claims.caps()
        event.listen(fresh, "before_cursor_execute", statement)
        event.listen(fresh, "commit", lambda _conn: seen.update(["(commit)"]))
        event.listen(fresh.pool, "checkout", lambda *_: seen.update(["(connection checkout)"]))
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            job = claims.claim_next("default", "bench@host", 60, limits)
            assert job is not None
            jobs.finish(job, JobStatus.COMPLETED, result=None, error=None, exit_code=0)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    sent = sum(n for kind, n in seen.items() if not kind.startswith("("))
    per_job = f"{wall * 1000 / count:.2f} ms, {cpu * 1000 / count:.2f} ms CPU"
    lines = [f"{name}: {sent / count:.1f} statements a job; {per_job}"]
    lines += [f"  {n / count:5.2f}  {kind}" for kind, n in sorted(seen.items(), key=lambda item: -item[1])]
    return "\n".join(lines)


def claim_and_end(count: int, backlog: int) -> None:
    """backlog jobs inserted, then count of them claimed and ended, on a fresh SQLite store: what --instructions
    counts."""
    with job_store("sqlite", "instructions"):
        for _ in range(backlog):
            creation.create(**JOB)
        for _ in range(count):
            job = claims.claim_next("default", "bench@host", 60, claims.Caps())
            assert job is not None
            jobs.finish(job, JobStatus.COMPLETED, result=None, error=None, exit_code=0)


def instructions(count: int) -> str:
    def counted(jobs_run: int) -> int:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        command += [sys.executable, "-m", "bench.statements", "--claim-and-end", f"{jobs_run},{WARM + count}"]
        found = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
        return int(re.findall(r"Collected : (\d+)", found.stderr)[-1])

    per_job = (counted(WARM + count) - counted(WARM)) / count
    return f"sqlite: {per_job / 1e6:.2f} M instructions a job's claim and end (callgrind, {count} jobs after {WARM})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    parser.add_argument("--instructions", action="store_true", help="count instructions (valgrind), SQLite only")
    parser.add_argument("--claim-and-end", help=argparse.SUPPRESS)  # what --instructions runs: "count,backlog"
    args = parser.parse_args()
    if args.claim_and_end is not None:
        count, backlog = (int(number) for number in args.claim_and_end.split(","))
        return claim_and_end(count, backlog)
    if args.instructions:
        return print(instructions(args.jobs))
    for name in args.stores:
        if name == "postgres" and not backends.POSTGRES:
            print("postgres: skipped (set ROBOTNI_TEST_POSTGRES_URL)")
            continue
        print(measure(name, args.jobs))


if __name__ == "__main__":
    main()
