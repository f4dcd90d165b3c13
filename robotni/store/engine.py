"""One engine per process on the configured job store: SQLite in WAL mode by default, PostgreSQL by URL."""

from __future__ import annotations

import os
import select
import threading
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry

from robotni.config import settings
from robotni.store import sqlite


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        eng = sqlite.make_engine(url, settings().db_busy_timeout, **_pool_size())
    else:
        eng = create_engine(url, **_pool_size())
        event.listen(eng, "checkout", _closed_by_server)
    return eng


def _pool_size() -> dict[str, int]:
    """A worker's threads each hold a connection while they claim or end a job, and its lease keeper one while it
    beats: SQLAlchemy's 5 kept + 10 more would make the slots of a large worker wait for one another."""
    slots = settings().worker_concurrency
    return {"pool_size": max(5, slots + 2), "max_overflow": max(10, slots)}


def _closed_by_server(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry, _proxy: object) -> None:
    """Discard a pooled connection the server closed (a restart): the pool opens a new one in its place.

    An idle connection's socket has nothing to read unless the server said something since: closed it, mostly (a
    restart sends a last error, then its end). Looking costs no round trip, where `pool_pre_ping` sends a query at
    every checkout (5 a job). A connection lost without a word fails its next statement instead, as it would
    after a ping too.
    """
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if readable:
        raise DisconnectionError("the server closed the connection")


def create_schema(eng: Engine) -> None:
    """Bring the schema to this version's head, as `robotni db upgrade` does."""
    from robotni.store import migrate

    migrate.upgrade(eng)


def _checked(eng: Engine) -> Engine:
    """SQLite (the embedded store) migrates itself; any other database must already be at head."""
    from robotni.store import migrate

    if eng.dialect.name == "sqlite" and eng.url.database not in (None, "", ":memory:"):
        migrate.ensure(eng, lock_path=Path(f"{eng.url.database}.migrate.lock"))
    else:
        migrate.ensure(eng, lock_path=None)
    return eng


_engines: dict[int, Engine] = {}
# Held while a process opens its engine. A new gunicorn worker's first requests arrive on many threads at once:
# unguarded, each opened an engine of its own, and one failed iterating _engines while another added to it (a 500).
_opening = threading.Lock()


def _new_lock_in_child() -> None:
    """A fork while another thread held the lock would leave the child's copy held forever."""
    global _opening
    _opening = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def engine() -> Engine:
    """This process's engine: a forked child (a Celery pool process, a gunicorn worker) opens its own, once."""
    pid = os.getpid()
    found = _engines.get(pid)
    if found is not None:
        return found
    with _opening:
        if pid not in _engines:
            for inherited in list(_engines.values()):  # the parent's connections stay the parent's: never closed
                inherited.dispose(close=False)
            _engines.clear()
            _engines[pid] = _checked(make_engine(settings().database_url))
        return _engines[pid]


def reading() -> Connection:
    """A connection for reads only: on PostgreSQL outside a transaction, so its statements go without the BEGIN and
    ROLLBACK round trips around them (each reads what was committed as it starts). SQLite runs in-process."""
    conn = engine().connect()
    return conn.execution_options(isolation_level="AUTOCOMMIT") if conn.dialect.name == "postgresql" else conn


def before_fork() -> None:
    """For a parent about to fork (gunicorn's preloading master, a Celery worker's main process): the ORM's
    mappers configured here, once, so the children share them instead of each building its own at its first
    query; and this process's pooled connections closed, so no child starts with a connection that is not its
    own. The next `engine()` here connects again."""
    from sqlalchemy.orm import configure_mappers

    from robotni.store import models  # noqa: F401  the mappers to configure

    configure_mappers()
    for eng in _engines.values():
        eng.dispose()


def use(eng: Engine | None) -> None:
    """Make `eng` this process's engine (None: the next `engine()` opens the configured store again).

    For tests and tools that point a process at another store without touching ROBOTNI_DATABASE_URL.
    """
    _engines.clear()
    if eng is not None:
        _engines[os.getpid()] = eng
