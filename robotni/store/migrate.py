"""Schema migrations (Alembic): `robotni db upgrade`; processes refuse an outdated schema, except embedded.

The embedded default (SQLite in the data folder) upgrades itself at start, under a file lock so the API's
workers, the Celery worker and beat starting together migrate once. Any other database is upgraded by the
operator, once per release, before the new version starts (docs/deployment.md).

Checking the schema at start needs no Alembic: every process does it (each gunicorn worker, each Celery pool
process), and importing Alembic (with Mako and Pygments) cost each about 10 MiB. Alembic is imported only to
upgrade or write a migration.
"""

from __future__ import annotations

import fcntl
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from robotni.errors import SchemaOutdated

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default, which env.py keeps
# `revision = "…"` and `down_revision = "…"` (or a tuple of them, or None) as Alembic writes them.
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\b[^=]*=(.*)$", re.MULTILINE)
_REVISION_ID = re.compile(r"[0-9a-f]{6,}")


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str | None:
    """The newest revision: the one no migration names as its parent, read from the files' text."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for name, value in _ASSIGNMENT.findall(path.read_text()):
            (revisions if name == "revision" else parents).update(_REVISION_ID.findall(value))
    heads = revisions - parents
    if len(heads) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory  # none or several heads: Alembic's own answer, or its error

    return ScriptDirectory.from_config(_config()).get_current_head()


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(engine: Engine) -> None:
    from alembic import command

    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def revise(engine: Engine, message: str) -> None:
    """Write a new migration from the difference between the models and the database (for developers)."""
    from alembic import command

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
