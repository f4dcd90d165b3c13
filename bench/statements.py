"""What a job costs the job store: `python -m bench.statements` (seconds; `--help` for the knobs).

In-process, no broker and no worker: --jobs no-op jobs are inserted, then each is taken the way a pool process
takes it (`claims.claim_next`, the claim with priorities and fair share) and ended (`jobs.finish`, with its
attempt and event), one after the other, on SQLite and on PostgreSQL (ROBOTNI_TEST_POSTGRES_URL, when it answers).
Printed per job: the SQL statements sent (by kind), the commits, the connection checkouts (each was a round trip
of its own while the engine pinged at checkout), and the wall and CPU time of the whole path. What a worker adds
around it (Celery, the job's process) is `python -m bench`'s.
"""

from __future__ import annotations

import argparse
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    args = parser.parse_args()
    for name in args.stores:
        if name == "postgres" and not backends.POSTGRES:
            print("postgres: skipped (set ROBOTNI_TEST_POSTGRES_URL)")
            continue
        print(measure(name, args.jobs))


if __name__ == "__main__":
    main()
