"""A plan: the schedules a prompt would make, each with the words its fields came from, and the words left over.

Each planned schedule is checked exactly as POST /schedules checks a body (the declaration's schema, the one request
check of robotni/submission/check.py, the timing), whether the rules or a model made it. Names come from the
type and the timing (`fakejob-daily-0700`), so executing a prompt twice finds its schedules again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import ValidationError

from robotni.config import Settings
from robotni.planner import cron, matching, model, timing, words
from robotni.planner.reading import Clause, PlanRefused, clauses, unplaced
from robotni.schedules.declaration import ScheduleCreateSchema
from robotni.schedules.dispatch import InvalidSchedule, Timing, zone
from robotni.submission import check
from robotni.worktypes.registry import WorkerType

log = logging.getLogger(__name__)
RULES, MODEL = "rules", "model"
# A name stays readable up to here; a longer one (a cron with many hours) is the type and a digest of its timing.
READABLE_NAME = 64
DOW_NAMES = {"1-5": "weekdays", "0,6": "weekends"}
# A sentence plans a few schedules; more is a list pasted in, or a model run away (each would be a schedule made).
MAX_SCHEDULES = 20


@dataclass
class Planned:
    type: str
    params: dict[str, Any]
    project: str
    timezone: str
    cron: str | None = None
    interval_seconds: int | None = None
    said: dict[str, str] = field(default_factory=dict)  # field -> the words it came from (`from` in the API)

    @property
    def name(self) -> str:
        return schedule_name(self.type, self.cron, self.interval_seconds)

    def values(self) -> dict[str, Any]:
        """The schedule as POST /schedules would take it."""
        return {
            "name": self.name,
            "type": self.type,
            "params": self.params,
            "project": self.project,
            "cron": self.cron,
            "interval_seconds": self.interval_seconds,
            "timezone": self.timezone,
        }


@dataclass
class Plan:
    source: str
    schedules: list[Planned]
    unplaced: list[str] = field(default_factory=list)
    model_error: str | None = None


def schedule_name(type_name: str, cron: str | None, interval: int | None) -> str:
    """`helloworld-every-30s`, `fakejob-daily-0700`, `add-weekdays-1800`, `add-day1-0815`, `add-hourly-at-15`."""
    if interval is not None:
        for size, unit in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
            if interval % size == 0 and (interval >= size or size == 1):  # 0 (refused later) is 0s, not 0d
                return f"{type_name}-every-{interval // size}{unit}"
    fields = (cron or "").split()
    readable = len(fields) == 5 and all(f == "*" or f.replace(",", "").replace("-", "").isdigit() for f in fields)
    name = f"{type_name}-{_cron_words(*fields)}" if readable else ""
    if not name or len(name) > READABLE_NAME:
        name = f"{type_name}-cron-{hashlib.sha256((cron or '').encode()).hexdigest()[:10]}"
    return name


def _cron_words(minute: str, hour: str, dom: str, month: str, dow: str) -> str:
    parts = []
    if month != "*":
        parts.append("-".join(words.MONTH_ABBREVIATIONS[int(m)] for m in month.split(",") if "-" not in m) or month)
    if dom != "*":
        parts.append("day" + dom.replace(",", "-"))
    if dow != "*":
        parts.append(DOW_NAMES.get(dow) or "-".join(_day_words(dow)))
    if hour == "*":
        parts.append("every-minute" if minute == "*" else "hourly" if minute == "0" else f"hourly-at-{minute}")
        return "-".join(parts)
    if not parts:
        parts.append("daily")
    minutes = "00" if minute == "*" else f"{int(minute.split(',')[0]):02d}"
    parts.extend(f"{int(h):02d}{minutes}" if h.isdigit() else h for h in hour.split(","))
    return "-".join(parts)


def _day_words(dow: str) -> list[str]:
    return [words.DAY_ABBREVIATIONS[int(d) % 7] if d.isdigit() else d for d in dow.split(",")]


# --- checks, the same for the rules and the model ----------------------------------------------------------------


def checked(planned: Planned, types: Mapping[str, WorkerType], current: Settings, now: datetime) -> None:
    """PlanRefused naming the field unless POST /schedules would take the schedule as planned."""
    try:
        ScheduleCreateSchema().load(planned.values())
        Timing(planned.cron, planned.timezone, planned.interval_seconds).check(now)
        check.checked(types, planned.type, planned.params, None, current)
    except ValidationError as exc:
        errors = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        raise PlanRefused(f"{planned.name}: {_flat(errors)}", errors) from None
    except InvalidSchedule as exc:
        raise PlanRefused(f"{planned.name}: {exc}", {exc.field: [exc.message]}) from None
    except check.RefusedRequest as exc:
        raise PlanRefused(f"{planned.name}: {_flat(exc.errors)}", exc.errors) from None


def _flat(errors: dict[str, Any], prefix: str = "") -> str:
    """Field errors as one line: `params.x: 'x' is a required property`."""
    return "; ".join(
        _flat(said, f"{prefix}{name}.") if isinstance(said, dict) else f"{prefix}{name}: {', '.join(map(str, said))}"
        for name, said in errors.items()
    )


def checked_zone(name: str) -> str:
    """An IANA timezone as written, or with each part capitalised ("asia/jakarta"); PlanRefused otherwise."""
    for candidate in (name, "/".join(part[:1].upper() + part[1:] for part in name.split("/"))):
        try:
            zone(candidate)
            return candidate
        except InvalidSchedule:
            continue
    raise PlanRefused(f"timezone: unknown timezone {name!r}", {"timezone": [f"unknown timezone {name!r}"]})


# --- the rules ---------------------------------------------------------------------------------------------------


def by_rules(prompt: str, timezone: str, project: str, types: Mapping[str, WorkerType]) -> Plan:
    """The plan the rules read from the prompt; PlanRefused saying what is missing when they cannot."""
    planned: list[Planned] = []
    left: list[str] = []
    previous: list[str] = []
    for clause in clauses(prompt) or [Clause(prompt, 0, len(prompt))]:
        made, previous = _clause(clause, timezone, project, types, previous)
        planned += made
        left += unplaced(clause)
    return Plan(RULES, _distinct(planned), left)


def _clause(
    clause: Clause, timezone: str, project: str, types: Mapping[str, WorkerType], previous: list[str]
) -> tuple[list[Planned], list[str]]:
    """The clause's schedules, and the types it named (the next clause without a type uses them)."""
    params = matching.params(clause)
    names = matching.named_types(clause, types)
    found = timing.facts(clause)
    named_zone = timing.zone_named(clause)  # after the time words: "senin s/d jumat" is no timezone
    names = names or matching.described_types(clause, types) or previous
    no_time = found == timing.Facts()
    if no_time:
        unplaced(clause)  # refuses naming a time word it could not read ('last'): that says more than "no time"
    missing = [timing.NO_TIME] * no_time + ([] if names else [matching.no_type(types)])
    if missing:
        raise PlanRefused("; ".join(missing))
    if len(names) > 1 and found.clock_groups > 1:
        raise PlanRefused(cron.SPLIT)
    whens = cron.whens(found)
    for name in names:
        matching.describing(clause, types[name])
    zone_name = checked_zone(named_zone or timezone)
    return [_planned(clause, name, params, project, zone_name, when) for name in names for when in whens], names


def _planned(
    clause: Clause, type_name: str, params: dict[str, Any], project: str, zone_name: str, when: cron.When
) -> Planned:
    said = {
        "type": clause.said("type") or "(as before)",
        "params": clause.said("params"),
        "cron" if when.cron else "interval_seconds": clause.said("timing"),
        "timezone": clause.said("timezone"),
    }
    words_of = {field: text for field, text in said.items() if text}
    return Planned(type_name, dict(params), project, zone_name, when.cron, when.interval, words_of)


def _distinct(planned: list[Planned]) -> list[Planned]:
    """The schedules once each; two that differ but would share a name refuse the plan."""
    by_name: dict[str, Planned] = {}
    for one in planned:
        other = by_name.setdefault(one.name, one)
        if other.values() != one.values():
            raise PlanRefused(f"two schedules would both be named {one.name!r}: say them in one clause, or differently")
    if len(by_name) > MAX_SCHEDULES:
        raise PlanRefused(f"{len(by_name)} schedules: a prompt plans at most {MAX_SCHEDULES}")
    return list(by_name.values())


# --- the plan, by the model when one is configured -----------------------------------------------------------------


def make(
    prompt: str, timezone: str, project: str, types: Mapping[str, WorkerType], current: Settings, now: datetime
) -> Plan:
    """The model's plan when one is configured and its answer passes every check; the rules' otherwise."""
    timezone = checked_zone(timezone)
    error = None
    if model.configured(current):
        try:
            return _from_model(model.ask(prompt, timezone, types, current), timezone, project, types, current, now)
        except (model.ModelFailed, PlanRefused) as exc:
            error = str(exc)
            log.warning("planner: the model's plan is not used (%s); the rules make it", error)
    try:
        plan = by_rules(prompt, timezone, project, types)
        for planned in plan.schedules:
            checked(planned, types, current, now)
    except PlanRefused as exc:
        if error is None:
            raise
        raise PlanRefused(f"{exc} (and the model's plan was not used: {error})", exc.errors) from None
    plan.model_error = error
    return plan


def _from_model(
    answer: dict[str, Any],
    timezone: str,
    project: str,
    types: Mapping[str, WorkerType],
    current: Settings,
    now: datetime,
) -> Plan:
    planned = [
        Planned(
            one["type"],
            one["params"],
            project,
            one.get("timezone") or timezone,
            one["cron"],
            one["interval_seconds"],
            dict(one["said"]),
        )
        for one in answer["schedules"]
    ]
    for one in planned:
        try:
            checked(one, types, current, now)
        except PlanRefused as exc:
            raise model.ModelFailed(f"the model's schedule {one.type!r} does not hold: {exc}") from None
    return Plan(MODEL, _distinct(planned), list(answer["unplaced"]))
