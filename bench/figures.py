"""The dashboard's and the report's figures at a million jobs, and export/import speed: `python -m bench.figures`.

The store is SQLite filled by bench/api.py's seed (--rows jobs over 30 days, about 1,400 an hour, ending at its
NEWEST). Then, in this process (the queries, not HTTP):

- `robotni.store.stats.dashboard` for a 1-hour and a 24-hour window and `report` for 24 hours, each --repeat
  times (the median and the slowest);
- `robotni export --logs` of the newest --transfer-rows jobs (`--since`), written to a file; `robotni import` of
  it into a fresh SQLite store, then again (every row already there).

Each number is printed with the machine's load average at that moment; the data folder is removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.api import NEWEST, SPAN, seed
from robotni.store import stats
from robotni.store.engine import create_schema, make_engine
from robotni.transfer import importer
from robotni.transfer.export import Scope, lines


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def timed(repeat: int, call: Callable[[], object]) -> tuple[float, float]:
    """Median and slowest of repeat calls, in milliseconds."""
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took), max(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--transfer-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="robotni-figures-"))
    try:
        source = folder / "source.db"
        print(f"seeded {args.rows} jobs in {seed(source, args.rows):.1f} s ({load()})")
        engine = make_engine(f"sqlite:///{source}")
        for name, call in (
            ("dashboard, 1 h window", lambda: stats.dashboard(engine, NEWEST, 3600, None)),
            ("dashboard, 24 h window", lambda: stats.dashboard(engine, NEWEST, 86400, None)),
            ("dashboard, 1 h, one project", lambda: stats.dashboard(engine, NEWEST, 3600, ["project-03"])),
            ("report, 24 h", lambda: stats.report(engine, NEWEST, 24, None)),
        ):
            median, slowest = timed(args.repeat, call)
            print(f"{name}: median {median:.0f} ms, slowest {slowest:.0f} ms ({load()})")

        since = NEWEST - SPAN * args.transfer_rows / args.rows
        export = folder / "export.jsonl"
        started = time.perf_counter()
        with open(export, "w") as f:
            f.writelines(lines(engine, Scope(since=since, logs=True)))
        took = time.perf_counter() - started
        size = export.stat().st_size / 1e6
        print(f"export of {args.transfer_rows} jobs: {took:.1f} s, {size:.0f} MB ({load()})")
        target = make_engine(f"sqlite:///{folder / 'target.db'}")
        create_schema(target)
        for attempt in ("import into an empty store", "import again (every row there)"):
            started = time.perf_counter()
            summary = importer.load(target, export)
            print(f"{attempt}: {time.perf_counter() - started:.1f} s, {summary.added['job']} jobs added ({load()})")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
