"""The claim's cost in the job store: `python -m bench.claims` (SQLite; PostgreSQL too when it answers here).

A claim reads the queue's best candidates, then makes one compare-and-set. Measured with a backlog of waiting
jobs: the compare-and-set alone by primary key (what a claim cost before issue 16, the floor), plain jobs of one
project, of two and of ten projects (fair share), and jobs under a concurrency key (the compare-and-set counts
the key's running jobs again). Each case gets a fresh store, --rounds times, the cases' order reversed every
other round so that a machine shared with other work weighs on all of them alike. Wall time includes the
commit; CPU time is this process's alone, which moves less with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from sqlalchemy.orm import Session

os.environ.setdefault("ROBOTNI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# After the test URL: tests.backends reads it at import.
from bench.fresh import job_store
from robotni.store import creation, engine
from robotni.store.claims import Caps, claim_next, take
from robotni.store.creation import Placement
from robotni.store.models import utcnow

KEYED = Placement(concurrency_key="k", concurrency_limit=10_000)
CASES = {
    "compare-and-set by primary key alone (the floor)": (["p"], Placement()),
    "plain, one project": (["p"], Placement()),
    "plain, two projects (fair share)": (["p", "q"], Placement()),
    "plain, ten projects (fair share)": ([f"p{i}" for i in range(10)], Placement()),
    "concurrency key, limit 10000": (["p"], KEYED),
}
FLOOR = next(iter(CASES))


def _fill(projects: list[str], placement: Placement, backlog: int) -> list[str]:
    rows = [
        creation.new_job(
            utcnow(),
            type="noop",
            project=projects[i % len(projects)],
            queue="default",
            params={},
            venv=None,
            max_attempts=1,
            placement=placement,
        )
        for i in range(backlog)
    ]
    with Session(engine.engine(), expire_on_commit=False) as session, session.begin():
        session.add_all(rows)
    return [row.id for row in rows]


def _measure(case: str, store: str, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Wall and CPU ms of each claim, on a fresh store holding the backlog."""
    wall, cpu = [], []
    with job_store(store, "claims"):
        ids = _fill(*CASES[case], args.backlog)
        for job_id in ids[: args.claims]:
            started, used = time.perf_counter(), time.process_time()
            if case == FLOOR:
                assert take(job_id, "bench@host", 15) is not None
            else:
                assert claim_next("default", "bench@host", 15, Caps()) is not None
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - used) * 1000)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    args = parser.parse_args()
    title = f"{args.backlog} waiting, {args.claims} claims x {args.rounds}"
    print(f"| {title} | store | wall median | wall p99 | CPU median |\n|---|---|---|---|---|")
    for store in args.stores:
        found: dict[str, tuple[list[float], list[float]]] = {case: ([], []) for case in CASES}
        for round_ in range(args.rounds):
            for case in CASES if round_ % 2 == 0 else reversed(CASES):
                wall, cpu = _measure(case, store, args)
                found[case][0].extend(wall)
                found[case][1].extend(cpu)
        for case, (wall, cpu) in found.items():
            p99, median = sorted(wall)[int(0.99 * len(wall))], statistics.median(wall)
            print(f"| {case} | {store} | {median:.2f} ms | {p99:.2f} ms | {statistics.median(cpu):.2f} ms |")


if __name__ == "__main__":
    main()
