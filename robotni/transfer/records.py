"""What an export line holds: a row of one table, each column a JSON value, checked field by field on import.

The columns are read from the models, so a column added to a table is exported and imported without a change
here. Times are naive UTC (ISO 8601, as the store keeps them), binary data is base64, statuses and priorities
their names.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import cached_property
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

STATUSES = frozenset(status.value for status in JobStatus)
PRIORITIES = frozenset(priority.value for priority in Priority)


@dataclass(frozen=True)
class Field:
    """How one column's value is checked: worked out once per column, used for every line."""

    column: Column[Any]
    decode: Callable[[Column[Any], Any], Any] | None  # None: any JSON value
    optional: bool  # an older export may lack it: the column's default applies
    sql_null: bool  # null goes in as SQL NULL (left out of the insert): a nullable JSON column


@dataclass(frozen=True)
class Kind:
    """One kind of record: the table its rows come from, and the columns never written (secrets)."""

    name: str
    table: Table
    omitted: frozenset[str] = frozenset()

    @cached_property
    def columns(self) -> list[Column[Any]]:
        return [column for column in self.table.columns if column.name not in self.omitted]

    @cached_property
    def fields(self) -> dict[str, Field]:
        return {column.name: _field(column) for column in self.columns}

    @cached_property
    def key(self) -> list[str]:
        return [column.name for column in self.table.primary_key.columns]


def _field(column: Column[Any]) -> Field:
    decode = next((how for types, how in DECODERS if isinstance(column.type, types)), None)
    optional = column.nullable or column.default is not None or column.server_default is not None
    return Field(column, decode, bool(optional), isinstance(column.type, JSON) and bool(column.nullable))


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
    fields = kind.fields
    unknown = sorted(name for name in record if name not in fields and name != "kind")
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in record:
            if field.optional:
                continue  # a field an older export did not have: the column's default
            raise ValueError(f"{name}: missing")
        value = record[name]
        if value is None:
            if not field.column.nullable:
                raise ValueError(f"{name}: must not be null")
            if not field.sql_null:
                values[name] = None
            continue  # a nullable JSON column: left out of the insert, SQL NULL as the store has it, not JSON's null
        try:
            values[name] = value if field.decode is None else field.decode(field.column, value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return values


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
    if value not in STATUSES:
        raise ValueError(f"{_shown(value)} is not a job status")
    return str(value)


def _priority(_column: Column[Any], value: Any) -> str:
    if value not in PRIORITIES:
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
DECODERS: list[tuple[type, Callable[[Column[Any], Any], Any]]] = [
    (StatusColumn, _status),
    (PriorityColumn, _priority),
    (Boolean, _boolean),
    (Integer, _integer),
    (Float, _float),
    (DateTime, _moment),
    (LargeBinary, _binary),
    (String, _text),
]
