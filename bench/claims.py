"""The claim's cost on the embedded store (SQLite): `python -m bench.claims`.

A claim reads the queue's best candidates, then makes one compare-and-set. Measured with a backlog of waiting
jobs: plain jobs of one project, plain jobs of two projects (the fair-share order sorts the waiting rows), and
jobs under a concurrency key (the compare-and-set counts the key's running jobs again).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

from robotni.store import engine, jobs
from robotni.store.claims import Caps, claim_next
from robotni.store.jobs import Placement
from robotni.store.models import utcnow

BACKLOG = 1000
CLAIMS = 200


def _fill(projects: list[str], placement: Placement) -> None:
    rows = [
        jobs.new_job(
            utcnow(),
            type="noop",
            project=projects[i % len(projects)],
            queue="default",
            params={},
            venv=None,
            max_attempts=1,
            placement=placement,
        )
        for i in range(BACKLOG)
    ]
    with Session(engine.engine()) as session, session.begin():
        session.add_all(rows)


def _measure(name: str, projects: list[str], placement: Placement) -> None:
    store = engine.make_engine(f"sqlite:///{Path(tempfile.mkdtemp(prefix='robotni-claims-')) / 'robotni.db'}")
    engine.create_schema(store)
    engine.use(store)
    _fill(projects, placement)
    times = []
    for _ in range(CLAIMS):
        start = time.perf_counter()
        assert claim_next("default", "bench@host", 15, Caps()) is not None
        times.append((time.perf_counter() - start) * 1000)
    engine.use(None)
    store.dispose()
    print(f"| {name} | {statistics.median(times):.2f} ms | {sorted(times)[int(0.99 * len(times))]:.2f} ms |")


def main() -> None:
    print(f"| {BACKLOG} waiting, {CLAIMS} claims | median | p99 |\n|---|---|---|")
    _measure("plain, one project", ["p"], Placement())
    _measure("plain, two projects (fair share)", ["p", "q"], Placement())
    _measure("concurrency key, limit 10000", ["p"], Placement(concurrency_key="k", concurrency_limit=10_000))


if __name__ == "__main__":
    main()
