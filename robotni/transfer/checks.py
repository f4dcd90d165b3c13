"""The check of a whole export file, line by line, before anything of it reaches a store.

Valid JSON, a known kind, every field of its column's type (robotni/transfer/records.py), the export's order,
no job's output beyond its log_bytes, and the end line's counts: a truncated, hand-edited or foreign file is
refused with the line and the reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robotni.errors import RobotniError
from robotni.transfer.export import FORMAT, VERSION
from robotni.transfer.records import KINDS, Kind, decoded

# Where each kind may appear: an export writes them in this order, and an import inserts what a row refers to
# before the row. A job's attempts and output follow it directly.
SECTIONS = {"schedule": 0, "webhook": 1, "workflow": 2, "job": 3, "attempt": 3, "output": 3, "dependency": 4}
SECTIONS["schedule_run"] = 5


class ImportRefused(RobotniError):
    """The file is not a whole, valid Robotni export this code can read, or conflicts with the store."""

    def __init__(self, line: int, reason: str):
        super().__init__(f"line {line}: {reason}")
        self.line, self.reason = line, reason


@dataclass(frozen=True)
class Line:
    number: int
    kind: Kind
    values: dict[str, Any]


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
        line = line_of(number, record)
        order.see(line)
        seen[line.kind.name] += 1
    if not ended:
        raise ImportRefused(last, "the file ends here without its end line: it was cut short")
    return logs


def _parsed(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            yield number, record_of(number, raw)


def record_of(number: int, raw: bytes) -> dict[str, Any]:
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


def line_of(number: int, record: dict[str, Any]) -> Line:
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
