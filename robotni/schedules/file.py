"""Schedules declared in a YAML or JSON file (ROBOTNI_SCHEDULES_FILE), for deployments kept in version control.

Beat reads the file when it starts and makes the store match it: schedules in the file are created or
updated (keeping their next due time unless their timing changed), file schedules no longer in it are
removed. Schedules made through the API are left alone, and a file entry may not take an API schedule's name.
A bad file changes nothing and stops beat with the reason, as a bad worker declaration stops a worker.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError

from robotni.config import settings
from robotni.errors import RobotniError
from robotni.schedules import dispatch
from robotni.schedules.declaration import ScheduleCreateSchema
from robotni.submission import check, workflow
from robotni.worktypes.registry import WorkerType, registry

Types = Mapping[str, WorkerType] | None


class ScheduleFileError(RobotniError):
    """The schedules file cannot be read or one of its entries is not a valid schedule."""


def read(path: Path) -> list[dict[str, Any]]:
    """The file's entries: a list, or a mapping with a `schedules` list. JSON when named .json, else YAML."""
    try:
        text = path.read_text()
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ScheduleFileError(f"{path}: cannot read it: {exc}") from None
    if isinstance(document, dict) and set(document) == {"schedules"}:
        document = document["schedules"]
    if document is None:
        return []
    if not isinstance(document, list) or not all(isinstance(entry, dict) for entry in document):
        raise ScheduleFileError(f"{path}: expected a list of schedules, or a mapping with a 'schedules' list")
    return document


def checked(path: Path, entries: list[dict[str, Any]], now: datetime, types: Types = None) -> list[dict[str, Any]]:
    """Each entry as the API would accept it; ScheduleFileError naming the entry and the field otherwise."""
    types = registry() if types is None else types
    result, names = [], set()
    for number, entry in enumerate(entries, 1):
        where = f"{path}: schedule {number} ({entry.get('name', 'no name')})"
        try:
            values = ScheduleCreateSchema().load(entry)
            dispatch.Timing(values["cron"], values["timezone"], values["interval_seconds"]).check(now)
            if values["workflow"] is not None:
                workflow.checked(types, values["project"], values["workflow"]["steps"], settings())
            else:
                check.checked(types, values["type"], values["params"], values["venv"], settings())
        except ValidationError as exc:
            raise ScheduleFileError(f"{where}: {exc.messages}") from None
        except check.RefusedRequest as exc:
            raise ScheduleFileError(f"{where}: {exc.errors}") from None
        except dispatch.InvalidSchedule as exc:
            raise ScheduleFileError(f"{where}: {exc}") from None
        if values["name"] in names:
            raise ScheduleFileError(f"{where}: the name is used twice")
        names.add(values["name"])
        result.append(values)
    return result


def sync(path: Path, now: datetime, types: Types = None) -> dict[str, int]:
    """Make the file's schedules in the store match the file; counts of created, updated and removed."""
    wanted = checked(path, read(path), now, types)
    for values in wanted:
        existing = dispatch.by_name(values["name"])
        if existing is not None and existing.source != dispatch.FILE_SOURCE:
            raise ScheduleFileError(f"{path}: {values['name']!r} is the name of a schedule made through the API")
    counts = {"created": 0, "updated": 0, "removed": 0}
    for values in wanted:
        values.update(source=dispatch.FILE_SOURCE, source_file=str(path))
        existing = dispatch.by_name(values["name"])
        if existing is None:
            dispatch.create(values, now)
            counts["created"] += 1
        elif any(getattr(existing, key) != value for key, value in values.items()):
            dispatch.change(existing, values, now)
            counts["updated"] += 1
    names = {values["name"] for values in wanted}
    for schedule in dispatch.listing():
        if schedule.source == dispatch.FILE_SOURCE and schedule.name not in names:
            counts["removed"] += dispatch.remove(schedule.id)
    return counts
