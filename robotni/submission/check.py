"""Is this a job Robotni may run? One answer for the API, schedules and the schedules file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marshmallow import validate

from robotni.config import Settings
from robotni.errors import InterpreterError, InvalidParams, RobotniError, UnknownType, UnsafeScript, UnsafeVenv
from robotni.paths import script_in, venv_python
from robotni.process_spec import check_interpreter
from robotni.status import Priority
from robotni.store.creation import Placement
from robotni.worktypes.registry import WorkerType

# Names of projects and schedules: safe in URLs, file names and metric labels.
NAME = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", error="use letters, digits, '_', '.', '-' (at most 128)")
DEFAULT_PROJECT = "default"
# A start further off than this is a mistake, not a plan (and would overflow date arithmetic).
MAX_WAIT_SECONDS = 10 * 365 * 24 * 3600
# Deeper params are refused before validation: they are never needed and recursion has a price.
MAX_PARAMS_DEPTH = 32
# A job waits for at most this many others: each is an edge read when it ends and a file entry when it runs.
MAX_PARENTS = 100
# Params travel in the job row and on stdin; large inputs belong in files the script fetches.
MAX_PARAMS_BYTES = 256 * 1024

# Field errors as flask-smorest shows them under "errors": {"json": ...}; nested for params.script.
FieldErrors = dict[str, Any]


class RefusedRequest(RobotniError):
    """A job request Robotni will not run; `errors` names each field and why, as the API's 422 shows them."""

    def __init__(self, message: str, errors: FieldErrors):
        super().__init__(message)
        self.errors = errors


@dataclass(frozen=True)
class Program:
    """What a job would run, resolved inside the configured folders: a venv's interpreter (or none) and a script."""

    venv_interpreter: str | None
    script: Path  # the type's own script, or the python-script type's file in the scripts folder


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def _refuse(field: str, message: str) -> RefusedRequest:
    return RefusedRequest(f"{field}: {message}", {field: [message]})


def program(wtype: WorkerType, params: Mapping[str, Any], venv: str | None, settings: Settings) -> Program:
    """The venv interpreter and script a job would run; UnsafePath or InterpreterError for what it must not.

    Checked at submit (so the client hears why) and again when the job starts (the folders may have changed).
    """
    if venv is not None and wtype.has_own_environment:
        raise UnsafeVenv(f"type {wtype.name!r} runs in its own environment; a job cannot choose another")
    interpreter = None if venv is None else check_interpreter(venv_python(settings.venvs_dir, venv))
    if wtype.script is None:
        return Program(interpreter, script_in(settings.scripts_dir, params["script"]))
    return Program(interpreter, wtype.script)


def checked(
    types: Mapping[str, WorkerType], type_name: str, params: Any, venv: str | None, settings: Settings
) -> tuple[WorkerType, dict[str, Any]]:
    """The worker type and the params with defaults filled in, or RefusedRequest naming each bad field."""
    if _depth(params) > MAX_PARAMS_DEPTH:
        raise _refuse("params", f"nested deeper than {MAX_PARAMS_DEPTH} levels")
    if len(json.dumps(params)) > MAX_PARAMS_BYTES:
        raise _refuse("params", f"larger than {MAX_PARAMS_BYTES} bytes as JSON")
    try:
        wtype = types[type_name]
    except UnknownType as exc:
        raise _refuse("type", str(exc)) from None
    except KeyError:  # a plain mapping of types, as the schedules file's tests pass
        raise _refuse("type", f"unknown worker type {type_name!r}") from None
    try:
        filled = wtype.validate(params)
    except InvalidParams as exc:
        raise RefusedRequest("params do not match the type's schema", {"params": exc.args[0]}) from None
    try:
        program(wtype, filled, venv, settings)
    except UnsafeScript as exc:
        raise RefusedRequest(f"params.script: {exc}", {"params": {"script": [str(exc)]}}) from None
    except (UnsafeVenv, InterpreterError) as exc:
        raise _refuse("venv", str(exc)) from None
    return wtype, filled


def placement(wtype: WorkerType, project: str, params: Mapping[str, Any], priority: str | None) -> Placement:
    """The job's priority (asked for, else its type's) and the concurrency key its type counts it under."""
    concurrency = wtype.concurrency
    return Placement(
        priority=wtype.priority if priority is None else Priority(priority),
        concurrency_key=None if concurrency is None else concurrency.key_of(wtype.name, project, params),
        concurrency_limit=None if concurrency is None else concurrency.limit,
    )
