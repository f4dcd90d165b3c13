"""Migrations: a server database must be upgraded by the operator; the embedded store upgrades itself."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from robotni.store import migrate
from tests import backends
from tests.stack import ROOT, Stack, wait_until


def robotni_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-c", "from robotni.cli import main; main()", *args]
    return subprocess.run(argv, env=stack.env, cwd=ROOT, capture_output=True, text=True)


@pytest.mark.skipif(not backends.POSTGRES, reason="set ROBOTNI_TEST_POSTGRES_URL to test migrations on PostgreSQL")
def test_processes_refuse_an_outdated_postgres_schema_until_upgraded(tmp_path):
    backend = backends.Backend("postgres")
    backends._postgres(backend)
    stack = Stack(tmp_path, backend.env)
    try:
        worker = stack.spawn("worker", [sys.executable, "-m", "celery", "-A", "robotni", "worker", "-Q", "default"])
        assert worker.popen.wait(timeout=60) != 0
        assert "run `robotni db upgrade`" in worker.log()
        assert "database: None" in robotni_cli(stack, "db", "current").stdout
        assert robotni_cli(stack, "db", "upgrade").returncode == 0
        stack.start_web()
        stack.start_worker()
        assert stack.wait_for(stack.submit("helloworld")["id"])["status"] == "completed"
    finally:
        stack.stop()
        backend.release()


def test_embedded_store_upgrades_itself_once(tmp_path):
    stack = Stack(tmp_path)
    try:
        stack.start_web()  # two gunicorn workers racing to migrate the same file
        stack.start_worker()
        wait_until(lambda: stack.http.get(stack.api("/status")).json()["workers"], 20, "the worker")
        with sqlite3.connect(stack.data_dir / "robotni.db") as db:
            assert db.execute("select version_num from alembic_version").fetchall() == [(migrate.head(),)]
    finally:
        stack.stop()


def test_migrations_build_exactly_the_models(tmp_path):
    """A model changed without a migration would pass every other test on SQLite and break `robotni db upgrade`."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from robotni.store.engine import create_schema, make_engine
    from robotni.store.models import Base

    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    create_schema(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == [], "run robotni.schema.revise(engine, message) and commit the new migration"


def test_head_read_from_the_files_is_alembics():
    """Processes check the schema without Alembic: the head they read from the migration files must be its own."""
    from alembic.script import ScriptDirectory

    assert migrate.head() == ScriptDirectory.from_config(migrate._config()).get_current_head()
