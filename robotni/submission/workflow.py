"""A workflow request checked as a whole: its steps' names and edges (no cycle), and each step as a job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from robotni.config import Settings
from robotni.status import ParentFailure
from robotni.store.workflows import NewStep
from robotni.submission import check
from robotni.submission.check import FieldErrors, RefusedRequest
from robotni.worktypes.registry import WorkerType

# A workflow is one transaction of inserts; a larger graph is better split into workflows that start each other.
MAX_STEPS = 1000


def order(names: Sequence[str], parents: Mapping[str, Sequence[str]]) -> tuple[list[str], list[str]]:
    """(the steps parents first, keeping the given order among equals; the steps left over, on or under a cycle)."""
    waiting_on = {name: len(set(parents.get(name, ()))) for name in names}
    children: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        for parent in set(parents.get(name, ())):
            children[parent].append(name)
    ready = [name for name in names if waiting_on[name] == 0]
    done: list[str] = []
    while ready:
        name = ready.pop(0)
        done.append(name)
        for child in children[name]:
            waiting_on[child] -= 1
            if waiting_on[child] == 0:
                ready.append(child)
    finished = set(done)
    return done, [name for name in names if name not in finished]


def cycle_in(left: Sequence[str], parents: Mapping[str, Sequence[str]]) -> list[str]:
    """A cycle among steps that `order` left over, parent first: each of them waits on another one of them."""
    stuck, path, seen = set(left), [left[0]], {left[0]: 0}
    while True:
        parent = next(p for p in parents[path[-1]] if p in stuck)
        if parent in seen:
            cycle = list(reversed(path[seen[parent] :]))
            start = min(range(len(cycle)), key=lambda i: left.index(cycle[i]))  # from the step listed first
            return cycle[start:] + cycle[:start]
        seen[parent] = len(path)
        path.append(parent)


def _refuse(message: str, errors: Mapping[Any, Any]) -> RefusedRequest:
    return RefusedRequest(message, {"steps": errors})


def checked(
    types: Mapping[str, WorkerType], project: str, steps: Sequence[Mapping[str, Any]], settings: Settings
) -> list[NewStep]:
    """The steps to insert, or RefusedRequest naming the bad step, the unknown name or the cycle.

    Each step is placed as a job of its type in the project: the type's priority and concurrency key.
    """
    if len(steps) > MAX_STEPS:
        raise _refuse(f"steps: {len(steps)}, at most {MAX_STEPS}", {"_schema": [f"at most {MAX_STEPS} steps"]})
    names = [step["name"] for step in steps]
    first = {name: index for index, name in reversed(list(enumerate(names)))}
    errors: dict[int, FieldErrors] = {}
    messages: list[str] = []
    checked_steps: list[tuple[WorkerType, dict[str, Any]]] = []
    for index, step in enumerate(steps):
        name, own = step["name"], {}
        if first[name] != index:
            own["name"] = [f"another step is named {name!r}"]
            messages.append(f"step {name!r}: the name is taken by another step")
        unknown = [parent for parent in step["depends_on"] if parent not in first]
        if unknown:
            own["depends_on"] = [f"no step named {parent!r}" for parent in unknown]
            messages.append(f"step {name!r}: depends_on: no step named {unknown[0]!r}")
        try:
            checked_steps.append(check.checked(types, step["type"], step["params"], step["venv"], settings))
        except RefusedRequest as exc:
            own.update(exc.errors)
            messages.append(f"step {name!r}: {exc}")
        if own:
            errors[index] = own
    if errors:
        raise _refuse(messages[0], errors)
    parents = {step["name"]: list(step["depends_on"]) for step in steps}
    _, left = order(names, parents)
    if left:
        cycle = cycle_in(left, parents)
        loop = " -> ".join([*cycle, cycle[0]])
        raise _refuse(f"steps: a cycle: {loop}", {"_schema": [f"a cycle: {loop}"]})
    return [
        NewStep(
            name=step["name"],
            type=wtype.name,
            queue=wtype.queue,
            params=params,
            venv=step["venv"],
            max_attempts=wtype.retry.max_attempts,
            depends_on=list(dict.fromkeys(step["depends_on"])),
            on_parent_failure=ParentFailure(step["on_parent_failure"]),
            placement=check.placement(wtype, project, params, None),
        )
        for step, (wtype, params) in zip(steps, checked_steps, strict=True)
    ]
