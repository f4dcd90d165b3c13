"""`python -m bench.counted worker ...`: `python -m robotni.serve`, counting the SQL statements each process runs.

For the scale check (bench/scale.py) when PostgreSQL's pg_stat_statements is not loaded (it needs
`shared_preload_libraries`, so a restart of a server other work uses). Each process writes its count, as text
at the start of a file named by its pid in $BENCH_STATEMENTS_DIR, after every statement: a forked pool process
starts a file of its own.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_count = {"pid": 0, "fd": -1, "statements": 0}


def _counted(*_: Any) -> None:
    pid = os.getpid()
    if _count["pid"] != pid:  # a new process (a fork): its own file, from 0
        path = Path(os.environ["BENCH_STATEMENTS_DIR"]) / str(pid)
        _count.update(pid=pid, fd=os.open(path, os.O_WRONLY | os.O_CREAT, 0o644), statements=0)
    _count["statements"] += 1
    os.pwrite(_count["fd"], f"{_count['statements']:<20}".encode(), 0)


def total(folder: Path) -> int:
    """Statements run by every process that wrote to `folder`."""
    return sum(int(path.read_text() or 0) for path in folder.iterdir())


if __name__ == "__main__":
    from robotni import serve

    event.listen(Engine, "before_cursor_execute", _counted)
    serve.main()
