"""Schema migrations (Alembic): `robotni db upgrade`; processes refuse an outdated schema, except embedded.

The embedded default (SQLite in the data folder) upgrades itself at start, under a file lock so the API's
workers, the Celery worker and beat starting together migrate once. Any other database is upgraded by the
operator, once per release, before the new version starts (docs/deployment.md).
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from robotni.errors import SchemaOutdated

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def revise(engine: Engine, message: str) -> None:
    """Write a new migration from the difference between the models and the database (for developers)."""
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.revision(config, message=message, autogenerate=True)


def ensure(engine: Engine, lock_path: Path | None) -> None:
    """Upgrade under lock_path's lock (the embedded store), or refuse to run on an outdated schema."""
    if lock_path is None:
        found, wanted = current(engine), head()
        if found != wanted:
            raise SchemaOutdated(
                f"the job store's schema is at {found or 'nothing'}, this Robotni needs {wanted}: "
                "run `robotni db upgrade` once, then start it again"
            )
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if current(engine) != head():
            upgrade(engine)
