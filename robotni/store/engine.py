"""One engine per process on the configured job store: SQLite in WAL mode by default, PostgreSQL by URL."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from robotni.config import settings


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a worker writes; NORMAL survives a killed process (not a power cut).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(settings().db_busy_timeout * 1000)}")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        eng = create_engine(url, connect_args={"timeout": settings().db_busy_timeout})
        event.listen(eng, "connect", _sqlite_pragmas)
    else:
        eng = create_engine(url, pool_pre_ping=True)
    return eng


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


def engine() -> Engine:
    """This process's engine: a forked child (a Celery pool process, a gunicorn worker) opens its own."""
    pid = os.getpid()
    if pid not in _engines:
        for inherited in _engines.values():  # the parent's connections stay the parent's: dropped, never closed
            inherited.dispose(close=False)
        _engines.clear()
        _engines[pid] = _checked(make_engine(settings().database_url))
    return _engines[pid]


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
