"""What the benchmarks set up alike: a stack on a fresh backend, or a job store alone in this process.

Import it after setting the ROBOTNI_TEST_* URLs: tests.backends reads them at import.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from tests import backends
from tests.stack import Stack

BENCH_WORKERS = Path(__file__).resolve().parent / "workers"


@contextmanager
def stack_on(name: str, label: str, scripts: Iterable[Path] = ()) -> Iterator[Stack]:
    """A stack (nothing started yet) on a fresh `name` backend (embedded, redis, rabbitmq) in a temporary folder,
    with `scripts` added to its worker types; stopped, its backend released and its folder removed after."""
    base = Path(tempfile.mkdtemp(prefix=f"robotni-{label}-{name}-"))
    backend = backends.provision(name)
    try:
        stack = Stack(base, dict(backend.env))
        for script in scripts:
            shutil.copy(script, stack.workers_dir / script.name)
        try:
            yield stack
        finally:
            stack.stop()
    finally:
        backend.release()
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def job_store(name: str, label: str) -> Iterator[Engine]:
    """tests.backends.job_store in a temporary folder, removed after."""
    base = Path(tempfile.mkdtemp(prefix=f"robotni-{label}-{name}-"))
    try:
        with backends.job_store(name, base) as fresh:
            yield fresh
    finally:
        shutil.rmtree(base, ignore_errors=True)
