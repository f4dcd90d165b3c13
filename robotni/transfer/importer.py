"""Load an export into the configured store: all of it or nothing, and nothing twice.

The whole file is checked first (robotni/transfer/checks.py), so a truncated, hand-edited or foreign file is
refused with the line and the reason before the store is touched. Then every line is inserted in one
transaction, skipping rows the store already has (by primary key): a second import of the same file adds
nothing. What needs the store to check (a schedule name or an idempotency key taken by another row, a
dependency on a job the store does not have) refuses the file in that transaction, which then leaves the store
as it was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from robotni.store.models import Job, Schedule, Workflow
from robotni.transfer.checks import ImportRefused, Line, check, line_of, record_of
from robotni.transfer.records import KINDS, Kind
from robotni.webhooks.signing import new_secret

# Lines inserted per round; a round also ends past this many bytes of lines (a job's output can be megabytes).
BATCH_LINES = 500
BATCH_BYTES = 16 * 1024 * 1024
# The secret is never exported: an imported webhook waits, disabled, for a new one.
IMPORTED_WEBHOOK = "imported without its signing secret: rotate it, give the receiver the new one, then enable it"


@dataclass
class Summary:
    """Rows inserted and rows the store already had, per kind."""

    added: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)


def load(eng: Engine, path: Path) -> Summary:
    """Check the whole file, then insert it in one transaction; ImportRefused leaves the store unchanged."""
    logs = check(path)
    summary = Summary()
    with eng.connect() as conn:
        if eng.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock at once: no writer between look-ups and inserts
        writer = _Writer(conn, logs, summary)
        for batch in _batches(path):
            writer.write(batch)
        conn.commit()
    return summary


def _batches(path: Path) -> Iterator[list[Line]]:
    batch: list[Line] = []
    size = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            record = record_of(number, raw)
            if number == 1 or record.get("kind") == "end":
                continue
            batch.append(line_of(number, record))
            size += len(raw)
            if len(batch) >= BATCH_LINES or size >= BATCH_BYTES:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


class _Writer:
    """Inserts checked lines a batch at a time, in one transaction, skipping rows the store has."""

    def __init__(self, conn: Connection, logs: bool, summary: Summary):
        self.conn, self.logs, self.summary = conn, logs, summary
        self.fresh: set[str] = set()  # jobs this import inserted whose attempts and output may still follow

    def write(self, batch: list[Line]) -> None:
        for name, kind in KINDS.items():  # what a row refers to first: the sections' order
            lines = [line for line in batch if line.kind is kind]
            if lines:
                added = self._written(kind, lines)
                self.summary.added[name] += added
                self.summary.skipped[name] += len(lines) - added
        last_job = next((line.values["id"] for line in reversed(batch) if line.kind.name == "job"), None)
        if last_job is not None:  # only the batch's last job can have lines in the next batch
            self.fresh &= {last_job}

    def _written(self, kind: Kind, lines: list[Line]) -> int:
        """Insert the lines whose rows the store lacks; how many."""
        if kind.name in ("attempt", "output"):  # a job comes whole or not at all: with its own row or not
            lines = [line for line in lines if line.values["job_id"] in self.fresh]
        new = self._absent(kind, lines)
        if not new:
            return 0
        if kind.name == "schedule":
            self._names_free(new)
        elif kind.name == "webhook":
            for line in new:
                line.values.update(secret=new_secret(), enabled=False, disabled_reason=IMPORTED_WEBHOOK)
        elif kind.name == "job":
            self._jobs_fit(new)
        elif kind.name == "dependency":
            self._present(Job.id, new, "job_id", "parent_id")
            self._mark_parents(new)
        elif kind.name == "schedule_run":
            self._present(Schedule.id, new, "schedule_id")
        self._insert(kind, new)
        return len(new)

    def _absent(self, kind: Kind, lines: list[Line]) -> list[Line]:
        """The lines whose primary key the store does not hold."""
        if not lines:
            return lines
        columns = [kind.table.c[name] for name in kind.key]
        keys = [tuple(line.values[name] for name in kind.key) for line in lines]
        held = tuple_(*columns).in_(keys) if len(columns) > 1 else columns[0].in_([key[0] for key in keys])
        found = {tuple(row) for row in self.conn.execute(select(*columns).where(held))}
        return [line for line, key in zip(lines, keys, strict=True) if key not in found]

    def _insert(self, kind: Kind, lines: list[Line]) -> None:
        # One statement per set of fields: a JSON field that was null is left out of its row (SQL NULL).
        groups: dict[frozenset[str], list[dict[str, Any]]] = {}
        for line in lines:
            groups.setdefault(frozenset(line.values), []).append(line.values)
        for rows in groups.values():
            try:
                self.conn.execute(insert(kind.table), rows)
            except IntegrityError as exc:
                first, last = lines[0].number, lines[-1].number
                reason = str(exc.orig).splitlines()[0]
                raise ImportRefused(
                    first, f"{kind.name} lines {first}-{last} clash with each other: {reason}"
                ) from None

    def _names_free(self, lines: list[Line]) -> None:
        names = {line.values["name"]: line for line in lines}
        for name, schedule_id in self.conn.execute(select(Schedule.name, Schedule.id).where(Schedule.name.in_(names))):
            raise ImportRefused(names[name].number, f"the store has another schedule named {name!r} ({schedule_id})")

    def _jobs_fit(self, lines: list[Line]) -> None:
        """No idempotency key taken by another job, every workflow known; output only if the file has it."""
        keyed = {(line.values["project"], line.values["idempotency_key"]): line for line in lines}
        keyed.pop((None, None), None)
        keys = [key for key in keyed if key[1] is not None]
        if keys:
            taken = select(Job.project, Job.idempotency_key, Job.id)
            for project, key, job_id in self.conn.execute(
                taken.where(tuple_(Job.project, Job.idempotency_key).in_(keys))
            ):
                line = keyed[project, key]
                raise ImportRefused(
                    line.number,
                    f"job {line.values['id']}: idempotency key {key!r} of project "
                    f"{project!r} belongs to job {job_id} in the store",
                )
        self._present(Workflow.id, [line for line in lines if line.values.get("workflow_id")], "workflow_id")
        for line in lines:
            if not self.logs:
                line.values["log_bytes"] = 0  # its output is not in the file: the imported job has none
            self.fresh.add(line.values["id"])

    def _mark_parents(self, lines: list[Line]) -> None:
        """A parent the store held before this import (an incremental export's older job) learns it has
        dependents, so its end settles them (robotni/store/dependencies.py); a parent from the file has the mark."""
        parents = sorted({line.values["parent_id"] for line in lines})
        mark = update(Job).where(Job.id.in_(parents), Job.has_dependents.is_(False)).values(has_dependents=True)
        self.conn.execute(mark)

    def _present(self, column: Any, lines: list[Line], *fields: str) -> None:
        """Refuse the first line naming an id of column the store does not have (inserted earlier or before)."""
        wanted = {line.values[name] for line in lines for name in fields}
        if not wanted:
            return
        found = set(self.conn.scalars(select(column).where(column.in_(wanted))))
        for line in lines:
            for name in fields:
                if line.values[name] not in found:
                    table = column.class_.__tablename__
                    raise ImportRefused(
                        line.number, f"{name} {line.values[name]}: no such row in {table}, in the file or the store"
                    )
