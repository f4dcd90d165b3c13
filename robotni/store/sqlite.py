"""SQLite, the embedded job store: its pragmas, and a process's writers taking turns before SQLite's lock."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection

# The statements that take SQLite's write lock (python's sqlite3 begins the transaction before them).
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class WriterTurns:
    """One write transaction at a time per process: its other writers wait on a lock, not in SQLite.

    SQLite lets one connection write; the others wait in its busy handler, which polls with sleeps growing to
    100 ms, so under a burst the longest waiter polls least often and can lose to newer ones past the busy
    timeout (one submit in 640 from 16 concurrent clients answered 503). A process's writers queue here instead
    and one of them at a time polls SQLite against the other processes'. A turn not given within the busy timeout
    is not waited for any longer: the writer goes on to SQLite, as it did without turns.

    Kept in the DB-API connection, not in SQLAlchemy's events: listeners on every statement cost a fifth of a
    job's claim and end (bench/statements.py --instructions).
    """

    def __init__(self, timeout: float) -> None:
        # Reentrant: a thread writing on a second connection inside its first one's transaction would wait on
        # itself; it goes on to SQLite instead, which tells it the store is locked as it always did.
        self.lock = threading.RLock()
        self.timeout = timeout

    def connect(self, *args: Any, **kwargs: Any) -> TurnTakingConnection:
        """sqlite3.connect's factory: a connection that takes this process's turns."""
        conn = TurnTakingConnection(*args, **kwargs)
        conn.turns = self
        return conn


class TurnTakingCursor(sqlite3.Cursor):
    connection: TurnTakingConnection

    def execute(self, sql: str, parameters: Any = (), /) -> TurnTakingCursor:
        self.connection.take_turn(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> TurnTakingCursor:
        self.connection.take_turn(sql)
        return super().executemany(sql, seq_of_parameters)


class TurnTakingConnection(sqlite3.Connection):
    turns: WriterTurns
    holds_turn = False

    def cursor(self, factory: Any = TurnTakingCursor) -> Any:
        return super().cursor(factory)

    def take_turn(self, statement: str) -> None:
        if not self.holds_turn and statement.lstrip()[:7].upper().startswith(_WRITES):
            self.holds_turn = self.turns.lock.acquire(timeout=self.turns.timeout)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._end_turn()

    def _end_turn(self) -> None:
        if self.holds_turn:
            self.holds_turn = False
            self.turns.lock.release()


def make_engine(url: str, busy_timeout: float, **options: Any) -> Engine:
    """An engine on an SQLite file whose connections take this process's writer turns."""
    factory = WriterTurns(busy_timeout).connect
    eng = create_engine(url, connect_args={"timeout": busy_timeout, "factory": factory}, **options)
    event.listen(eng, "connect", lambda conn, _record: _set_pragmas(conn, busy_timeout))
    return eng


def _set_pragmas(dbapi_connection: DBAPIConnection, busy_timeout: float) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the API read while a worker writes; NORMAL survives a killed process (not a power cut).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    cursor.close()
