"""Load an export into the configured store: all of it or nothing, and nothing twice.

The whole file is checked first, line by line (valid JSON, a known kind, every field of the right type, the
export's order, each job's output adding up to its log_bytes, the end line's counts), so a truncated,
hand-edited or foreign file is refused with the line and the reason before the store is touched. Then every
line is inserted in one transaction, skipping rows the store already has (by primary key): a second import of
the same file adds nothing. What needs the store to check (a schedule name or an idempotency key taken by
another row, a dependency on a job the store does not have) refuses the file in that transaction, which then
leaves the store as it was.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, tuple_
from sqlalchemy.exc import IntegrityError

from robotni.errors import RobotniError
from robotni.store.models import Job, Schedule, Workflow
from robotni.transfer.export import FORMAT, VERSION
from robotni.transfer.records import KINDS, Kind, decoded
from robotni.webhooks.signing import new_secret

# Lines inserted per round; a round also ends past this many bytes of lines (a job's output can be megabytes).
BATCH_LINES = 500
BATCH_BYTES = 16 * 1024 * 1024
# Where each kind may appear: an export writes them in this order, and an import inserts what a row refers to
# before the row. A job's attempts and output follow it directly.
SECTIONS = {"schedule": 0, "webhook": 1, "workflow": 2, "job": 3, "attempt": 3, "output": 3, "dependency": 4}
SECTIONS["schedule_run"] = 5
# The secret is never exported: an imported webhook waits, disabled, for a new one.
IMPORTED_WEBHOOK = "imported without its signing secret: rotate it, give the receiver the new one, then enable it"


class ImportRefused(RobotniError):
    """The file is not a whole, valid Robotni export this code can read, or conflicts with the store."""

    def __init__(self, line: int, reason: str):
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason = line, reason


@dataclass
class Summary:
    """Rows inserted and rows the store already had, per kind."""

    added: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Line:
    number: int
    kind: Kind
    values: dict[str, Any]


def load(eng: Engine, path: Path) -> Summary:
    """Check the whole file, then insert it in one transaction; ImportRefused leaves the store unchanged."""
    logs = check(path)
    summary = Summary()
    with eng.connect() as conn:
        if eng.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock now: nothing changes between check and insert
        writer = _Writer(conn, logs, summary)
        for batch in _batches(path):
            writer.write(batch)
        conn.commit()
    return summary


def check(path: Path) -> bool:
    """Every line of the file, without the store; whether it holds the jobs' output. ImportRefused otherwise."""
    numbered = _parsed(path)
    first = next(numbered, None)
    if first is None:
        raise ImportRefused(1, "the file is empty: not a Robotni export")
    logs = _header(*first)
    order, seen, last, ended = _Order(logs), Counter[str](), 1, False
    for number, record in numbered:
        last = number
        if ended:
            raise ImportRefused(number, "a line after the end line")
        if record.get("kind") == "end":
            order.close()
            _check_counts(number, record, seen)
            ended = True
            continue
        line = _line(number, record)
        order.see(line)
        seen[line.kind.name] += 1
    if not ended:
        raise ImportRefused(last, "the file ends here without its end line: it was cut short")
    return logs


def _parsed(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            yield number, _record(number, raw)


def _record(number: int, raw: bytes) -> dict[str, Any]:
    foreign = ": not a Robotni export" if number == 1 else ""
    try:
        record = json.loads(raw.decode())
    except UnicodeDecodeError:
        raise ImportRefused(number, f"not UTF-8 text{foreign}") from None
    except (ValueError, RecursionError):
        raise ImportRefused(number, f"not a JSON line (cut short or edited?){foreign}") from None
    if not isinstance(record, dict):
        raise ImportRefused(number, f"not a JSON object{foreign}")
    return record


def _header(number: int, header: dict[str, Any]) -> bool:
    if header.get("format") != FORMAT:
        raise ImportRefused(number, f"no {FORMAT!r} header: not a Robotni export")
    version = header.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ImportRefused(number, f"export format version {version!r} is not a version")
    if version > VERSION:
        raise ImportRefused(number, f"export format version {version} is newer than this Robotni reads ({VERSION})")
    scope = header.get("scope")
    if not isinstance(scope, dict) or not isinstance(scope.get("logs"), bool):
        raise ImportRefused(number, "the header has no scope saying whether the export holds the jobs' output")
    return bool(scope["logs"])


def _line(number: int, record: dict[str, Any]) -> Line:
    kind = KINDS.get(record.get("kind"))  # type: ignore[arg-type]  # any value: a miss is the answer
    if kind is None:
        raise ImportRefused(number, f"unknown kind {record.get('kind')!r}")
    try:
        return Line(number, kind, decoded(kind, record))
    except ValueError as exc:
        named = " ".join(str(record.get(key)) for key in kind.key)
        raise ImportRefused(number, f"{kind.name} {named}: {exc}") from None


def _check_counts(number: int, record: dict[str, Any], seen: Counter[str]) -> None:
    counts = record.get("counts")
    if not isinstance(counts, dict) or set(counts) - set(KINDS):
        raise ImportRefused(number, "the end line's counts are not counts of known kinds")
    for name in KINDS:
        if counts.get(name, 0) != seen[name]:
            raise ImportRefused(
                number, f"the end line counts {counts.get(name, 0)} {name} lines, the file has {seen[name]}"
            )


class _Order:
    """The export's order: sections never go back, and a job's attempts and output come right after it."""

    def __init__(self, logs: bool):
        self.logs, self.section = logs, 0
        self.job: Line | None = None
        self.output = 0  # bytes of the current job's output seen

    def see(self, line: Line) -> None:
        name, section = line.kind.name, SECTIONS[line.kind.name]
        if section < self.section:
            raise ImportRefused(line.number, f"a {name} line after the {self._section_name()} lines")
        self.section = section
        if name == "job":
            self.close()
            self.job, self.output = line, 0
        elif name in ("attempt", "output"):
            self._child(line)
        else:
            self.close()

    def _child(self, line: Line) -> None:
        job_id = line.values["job_id"]
        if self.job is None or self.job.values["id"] != job_id:
            raise ImportRefused(line.number, f"{line.kind.name} of job {job_id} does not follow that job's line")
        if line.kind.name == "output":
            if not self.logs:
                raise ImportRefused(line.number, "output in an export whose header says it holds none")
            if line.values["start"] != self.output:
                raise ImportRefused(
                    line.number,
                    f"output of job {job_id} from byte {line.values['start']}, "
                    f"but its output so far ends at {self.output}",
                )
            self.output += len(line.values["data"])

    def close(self) -> None:
        """The current job has all its lines: its output cannot be longer than its log_bytes.

        It can be shorter: a job that ended before the store kept output (an older schema) has only its size.
        """
        job, self.job = self.job, None
        if job is not None and self.logs and self.output > job.values.get("log_bytes", 0):
            raise ImportRefused(
                job.number,
                f"job {job.values['id']} has log_bytes {job.values.get('log_bytes')}, "
                f"its output lines hold {self.output} bytes",
            )

    def _section_name(self) -> str:
        return next(name for name, section in SECTIONS.items() if section == self.section)


def _batches(path: Path) -> Iterator[list[Line]]:
    batch: list[Line] = []
    size = 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            record = _record(number, raw)
            if number == 1 or record.get("kind") == "end":
                continue
            batch.append(_line(number, record))
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
