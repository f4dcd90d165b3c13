"""The three stacks the integration tests run on, each test module with its own database, vhost or Redis db.

Redis, RabbitMQ and PostgreSQL are used only when `.ci/run` (or you) set their URLs; otherwise those stacks
are skipped with the reason, and a plain `pytest` runs on the embedded default alone.
"""

from __future__ import annotations

import fcntl
import os
import random
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import Engine

from robotni.store import engine
from tests.stack import Stack

POSTGRES = os.environ.get("ROBOTNI_TEST_POSTGRES_URL")  # e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test
REDIS = os.environ.get("ROBOTNI_TEST_REDIS_URL")  # e.g. redis://127.0.0.1:6379
AMQP = os.environ.get("ROBOTNI_TEST_AMQP_URL")  # e.g. amqp://guest:guest@127.0.0.1:5672
# Redis's default 16 dbs, but 0: a developer's own data may live there.
REDIS_DBS = list(range(1, 16))


@dataclass
class Backend:
    name: str
    env: dict[str, str] = field(default_factory=dict)
    _cleanup: list = field(default_factory=list)

    def release(self) -> None:
        while self._cleanup:
            self._cleanup.pop()()


def _postgres(backend: Backend) -> None:
    from sqlalchemy import create_engine, text

    name = f"robotni_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT", pool_pre_ping=True)  # survives a restart
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    backend._cleanup.append(drop)
    backend.env["ROBOTNI_DATABASE_URL"] = POSTGRES.rsplit("/", 1)[0] + f"/{name}"


def _lock_redis_db() -> tuple[int, IO]:
    """A Redis db no other test holds, in this run or a parallel one (pytest-xdist): its lock file stays open."""
    for db in random.sample(REDIS_DBS, len(REDIS_DBS)):
        lock = open(Path(tempfile.gettempdir()) / f"robotni-test-redis-{db}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return db, lock
    raise RuntimeError(f"every Redis db {REDIS_DBS[0]}-{REDIS_DBS[-1]} is held by another test")


def _redis(backend: Backend) -> None:
    import redis

    db, lock = _lock_redis_db()
    backend._cleanup.append(lock.close)
    url = f"{REDIS.rstrip('/')}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    backend._cleanup.append(lambda: (client.flushdb(), client.close()))
    backend.env["ROBOTNI_BROKER_URL"] = url


def _rabbitmq(backend: Backend) -> None:
    vhost = f"robotni_{uuid.uuid4().hex[:12]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    backend._cleanup.append(
        lambda: subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False, capture_output=True)
    )
    backend.env["ROBOTNI_BROKER_URL"] = f"{AMQP.rstrip('/')}/{vhost}"


def provision(name: str) -> Backend:
    backend = Backend(name)
    if name == "embedded":
        return backend
    broker = ("ROBOTNI_TEST_REDIS_URL", REDIS) if name == "redis" else ("ROBOTNI_TEST_AMQP_URL", AMQP)
    missing = [var for var, value in (("ROBOTNI_TEST_POSTGRES_URL", POSTGRES), broker) if not value]
    if missing:
        pytest.skip(f"{name} stack: set {' and '.join(missing)} to run it")
    try:
        _postgres(backend)
        (_redis if name == "redis" else _rabbitmq)(backend)
    except Exception:
        backend.release()
        raise
    return backend


def redis_only(name: str) -> Backend:
    """A Redis db of its own and nothing else (the benchmark's plain-Celery and RQ peers): ROBOTNI_BROKER_URL."""
    backend = Backend(name)
    if not REDIS:
        raise RuntimeError("set ROBOTNI_TEST_REDIS_URL for a Redis db")
    _redis(backend)
    return backend


def postgres_database() -> Backend:
    """A fresh PostgreSQL database alone (ROBOTNI_DATABASE_URL in its env), for a store moved into it."""
    if not POSTGRES:
        pytest.skip("set ROBOTNI_TEST_POSTGRES_URL to run it")
    backend = Backend("postgres")
    _postgres(backend)
    return backend


@contextmanager
def job_store(name: str, folder: Path) -> Iterator[Engine]:
    """This process's engine (`engine.use`) on a fresh job store until the block ends: SQLite in folder (`sqlite`,
    `embedded`), else a PostgreSQL database of its own, dropped after."""
    backend = Backend(name)
    try:
        if name in ("sqlite", "embedded"):
            url = f"sqlite:///{folder / 'robotni.db'}"
        else:
            _postgres(backend)
            url = backend.env["ROBOTNI_DATABASE_URL"]
        fresh = engine.make_engine(url)
        engine.create_schema(fresh)
        engine.use(fresh)
        try:
            yield fresh
        finally:
            engine.use(None)
            fresh.dispose()
    finally:
        backend.release()


STACKS = ["embedded", "redis", "rabbitmq"]


@contextmanager
def web_on(name: str, base: Path, env: dict[str, str]) -> Iterator[Stack]:
    """gunicorn alone on a freshly provisioned stack; the test starts (and kills) its own workers."""
    backend = provision(name)
    stack = Stack(base, {**env, **backend.env})
    stack.backend = backend.name
    try:
        stack.start_web()
        yield stack
    finally:
        stack.stop()
        backend.release()
