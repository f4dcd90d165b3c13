"""What an export line holds: a row of one table, each column a JSON value, checked field by field on import.

The columns are read from the models, so a column added to a table is exported and imported without a change
here. Times are naive UTC (ISO 8601, as the store keeps them), binary data is base64, statuses and priorities
their names.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import JSON, Boolean, Column, DateTime, Float, Integer, LargeBinary, String, Table

from robotni.status import JobStatus, Priority
from robotni.store.models import (
    Attempt,
    Dependency,
    Job,
    LogChunk,
    PriorityColumn,
    Schedule,
    ScheduleRun,
    StatusColumn,
    WebhookSubscription,
    Workflow,
)


@dataclass(frozen=True)
class Kind:
    """One kind of record: the table its rows come from, and the columns never written (secrets)."""

    name: str
    table: Table
    omitted: frozenset[str] = frozenset()

    @property
    def columns(self) -> list[Column[Any]]:
        return [column for column in self.table.columns if column.name not in self.omitted]

    @property
    def key(self) -> list[str]:
        return [column.name for column in self.table.primary_key.columns]


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


# In the order an export writes them and an import inserts them: what a row refers to comes before it.
KINDS = {
    kind.name: kind
    for kind in (
        Kind("schedule", _table(Schedule)),
        Kind("webhook", _table(WebhookSubscription), frozenset({"secret"})),
        Kind("workflow", _table(Workflow)),
        Kind("job", _table(Job)),
        Kind("attempt", _table(Attempt)),
        Kind("output", _table(LogChunk)),
        Kind("dependency", _table(Dependency)),
        Kind("schedule_run", _table(ScheduleRun)),
    )
}


def encoded(kind: Kind, row: Mapping[Any, Any]) -> dict[str, Any]:
    """The record of a row (read with the table's own column types: statuses as JobStatus and so on)."""
    return {"kind": kind.name, **{column.name: _encode(row[column.name]) for column in kind.columns}}


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Enum):
        return value.value
    return value


def decoded(kind: Kind, record: Mapping[str, Any]) -> dict[str, Any]:
    """The row's values for an insert; ValueError naming the field when the record is not a valid row."""
    unknown = sorted(set(record) - {"kind"} - {column.name for column in kind.columns})
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}")
    values = {}
    for column in kind.columns:
        if column.name not in record:
            if column.nullable or column.default is not None or column.server_default is not None:
                continue  # a field an older export did not have: the column's default
            raise ValueError(f"{column.name}: missing")
        value = record[column.name]
        if value is None and isinstance(column.type, JSON) and column.nullable:
            continue  # left out of the insert: SQL NULL, as the store has it, not JSON's `null`
        try:
            values[column.name] = _decode(column, value)
        except ValueError as exc:
            raise ValueError(f"{column.name}: {exc}") from None
    return values


def _decode(column: Column[Any], value: Any) -> Any:
    if value is None:
        if not column.nullable:
            raise ValueError("must not be null")
        return None
    decode = next((how for types, how in DECODERS if isinstance(column.type, types)), None)
    return value if decode is None else decode(column, value)


def _text(column: Column[Any], value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, not {_shown(value)}")
    length = getattr(column.type, "length", None)
    if length is not None and len(value) > length:
        raise ValueError(f"longer than {length} characters")
    if "\0" in value:
        raise ValueError("contains a NUL character")
    return value


def _status(_column: Column[Any], value: Any) -> str:
    if value not in {status.value for status in JobStatus}:
        raise ValueError(f"{_shown(value)} is not a job status")
    return str(value)


def _priority(_column: Column[Any], value: Any) -> str:
    if value not in {priority.value for priority in Priority}:
        raise ValueError(f"{_shown(value)} is not a priority")
    return str(value)


def _integer(_column: Column[Any], value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, not {_shown(value)}")
    return value


def _float(_column: Column[Any], value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, not {_shown(value)}")
    return float(value)


def _boolean(_column: Column[Any], value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, not {_shown(value)}")
    return value


def _moment(_column: Column[Any], value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected an ISO 8601 time, not {_shown(value)}") from None
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _binary(_column: Column[Any], value: Any) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (TypeError, binascii.Error):
        raise ValueError("expected base64 data") from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# Checked in this order: the store's own column types first (a StatusColumn is no String).
DECODERS: list[tuple[type | tuple[type, ...], Any]] = [
    (StatusColumn, _status),
    (PriorityColumn, _priority),
    (Boolean, _boolean),
    (Integer, _integer),
    (Float, _float),
    (DateTime, _moment),
    (LargeBinary, _binary),
    (String, _text),
]
