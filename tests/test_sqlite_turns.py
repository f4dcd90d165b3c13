"""SQLite's writers of one process take turns (robotni/store/sqlite.py) instead of racing in SQLite's busy handler."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from robotni.store import sqlite

BUSY_TIMEOUT = 0.5


@pytest.fixture
def store(tmp_path) -> Engine:
    eng = sqlite.make_engine(f"sqlite:///{tmp_path / 'turns.db'}", BUSY_TIMEOUT, pool_size=40)
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    yield eng
    eng.dispose()


def test_a_burst_of_writers_in_one_process_all_write_within_the_busy_timeout(store):
    """32 threads writing at once: without turns about one transaction in 16 waited past the busy timeout (the
    longest waiter polls SQLite least often), which the API answers 503."""
    threads, each = 32, 30
    failed: list[str] = []

    def write() -> None:
        for _ in range(each):
            try:
                with store.begin() as conn:
                    conn.execute(text("INSERT INTO t DEFAULT VALUES"))
                    time.sleep(0.002)  # a transaction's own work, holding the lock
            except OperationalError as exc:
                failed.append(str(exc.orig))

    writers = [threading.Thread(target=write) for _ in range(threads)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert failed == []
    with store.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == threads * each


def test_a_second_connection_writing_inside_a_first_one_s_transaction_is_told_the_store_is_locked(store):
    """The turn is the thread's: its second connection does not wait on itself, SQLite refuses it after its
    busy timeout."""
    with store.begin() as first:
        first.execute(text("INSERT INTO t DEFAULT VALUES"))
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"), store.begin() as second:
            second.execute(text("INSERT INTO t DEFAULT VALUES"))
        assert time.monotonic() - started < BUSY_TIMEOUT * 1.9


def test_a_turn_ends_with_its_transaction_committed_or_rolled_back(store):
    """Another thread writes at once after either end; a turn left held would keep it waiting the busy timeout."""

    def other_thread_s_write_took() -> float:
        took: list[float] = []

        def write() -> None:
            started = time.monotonic()
            with store.begin() as conn:
                conn.execute(text("INSERT INTO t DEFAULT VALUES"))
            took.append(time.monotonic() - started)

        other = threading.Thread(target=write)
        other.start()
        other.join()
        return took[0]

    with store.begin() as conn:
        conn.execute(text("INSERT INTO t DEFAULT VALUES"))
    assert other_thread_s_write_took() < BUSY_TIMEOUT / 2
    with pytest.raises(ZeroDivisionError), store.begin() as conn:
        conn.execute(text("INSERT INTO t DEFAULT VALUES"))
        _ = 1 / 0
    assert other_thread_s_write_took() < BUSY_TIMEOUT / 2
