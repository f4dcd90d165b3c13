"""What `robotni start` runs the Procfile with: honcho's manager, lighter.

honcho forks a copy of the `robotni start` process for each line of the Procfile, only to read that line's
output: five copies of about 5.6 MiB each in the default stack. Here each line's output is read by a thread of
this process instead; honcho's own loop still prints the lines and stops every process group on SIGINT or
SIGTERM. And the embedded store (SQLite) is brought to the current schema once, in a short-lived child, before
the lines start: otherwise the first process to start migrates it under a lock and keeps Alembic loaded (about
10 MiB) for as long as it runs.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from typing import Any

from honcho.manager import Manager

from robotni.config import settings
from robotni.errors import RobotniError


class ThreadedManager(Manager):  # type: ignore[misc]  # honcho ships no types
    def __init__(self) -> None:
        super().__init__()
        self.events: queue.Queue[Any] = queue.Queue()  # the readers are threads: no queue between processes needed

    def _start(self) -> None:
        """honcho's `_start`, with a thread per line: it must not touch signals, which only this main thread may."""
        for name, line in self._processes.items():
            line["process"] = threading.Thread(
                target=line["obj"].run, args=(self.events, False), name=f"honcho-{name}", daemon=True
            )
            line["process"].start()


def _migrate() -> None:
    from robotni.store.engine import engine

    engine()  # the embedded store migrates itself when it opens (robotni/store/migrate.py)


def migrate_embedded_store() -> None:
    """Upgrade an embedded (SQLite) store in a forked child, so neither this process nor the lines load Alembic.
    A server database is the operator's to upgrade: left alone, as every process leaves it. RobotniError if the
    upgrade failed: every line would fail the same way, so none is started."""
    url = settings().database_url
    if not url.startswith("sqlite"):
        return
    child = multiprocessing.get_context("fork").Process(target=_migrate, name="robotni-migrate")
    child.start()
    child.join()
    if child.exitcode != 0:  # the child printed its traceback
        raise RobotniError(f"the job store {url} could not be opened and upgraded (see above); nothing was started")
