"""The claim's cost on the embedded store (SQLite): `python -m bench.claims`.

A claim reads the queue's best candidates, then makes one compare-and-set. Measured with a backlog of waiting
jobs: the compare-and-set alone by primary key (what a claim cost before issue 16, the floor), plain jobs of one
project, of two and of ten projects (fair share), and jobs under a concurrency key (the compare-and-set counts
the key's running jobs again).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session

from robotni.store import creation, engine
from robotni.store.claims import Caps, claim_next, take
from robotni.store.creation import Placement
from robotni.store.models import utcnow

BACKLOG = 1000
CLAIMS = 200


def _fill(projects: list[str], placement: Placement) -> list[str]:
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
        for i in range(BACKLOG)
    ]
    with Session(engine.engine(), expire_on_commit=False) as session, session.begin():
        session.add_all(rows)
    return [row.id for row in rows]


def _measure(name: str, projects: list[str], placement: Placement, by_id: bool = False) -> None:
    store = engine.make_engine(f"sqlite:///{Path(tempfile.mkdtemp(prefix='robotni-claims-')) / 'robotni.db'}")
    engine.create_schema(store)
    engine.use(store)
    ids = _fill(projects, placement)
    times = []
    for job_id in ids[:CLAIMS]:
        start = time.perf_counter()
        if by_id:
            assert take(job_id, "bench@host", 15) is not None
        else:
            assert claim_next("default", "bench@host", 15, Caps()) is not None
        times.append((time.perf_counter() - start) * 1000)
    engine.use(None)
    store.dispose()
    print(f"| {name} | {statistics.median(times):.2f} ms | {sorted(times)[int(0.99 * len(times))]:.2f} ms |")


def main() -> None:
    print(f"| {BACKLOG} waiting, {CLAIMS} claims | median | p99 |\n|---|---|---|")
    _measure("compare-and-set by primary key alone (the floor)", ["p"], Placement(), by_id=True)
    _measure("plain, one project", ["p"], Placement())
    _measure("plain, two projects (fair share)", ["p", "q"], Placement())
    _measure("plain, ten projects (fair share)", [f"p{i}" for i in range(10)], Placement())
    _measure("concurrency key, limit 10000", ["p"], Placement(concurrency_key="k", concurrency_limit=10_000))


if __name__ == "__main__":
    main()
