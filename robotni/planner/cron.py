"""A clause's facts about time (robotni/planner/timing.py) made into schedule timings: one interval, or cron.

What a sentence leaves open is decided here, the same way each time: a clock time alone is every day, "weekly" is
Monday, "monthly" the 1st, and what cron cannot say ("the first Monday") is refused rather than approximated.
"""

from __future__ import annotations

from dataclasses import dataclass

from robotni.planner import words
from robotni.planner.reading import PlanRefused
from robotni.planner.timing import NO_TIME, Facts

# Cron gives every listed time on every listed day: a clause pairing times with days one by one cannot be one cron.
SPLIT = "times for different days (or types) in one clause: give each its own clause, separated by ';'"


@dataclass(frozen=True)
class When:
    cron: str | None = None
    interval: int | None = None


def whens(found: Facts) -> list[When]:
    """The schedules' timings: one interval, or one cron per distinct minute of the clock times."""
    if found == Facts():
        raise PlanRefused(NO_TIME)
    if found.clock_groups > 1 and (found.days or found.dom or found.months):
        raise PlanRefused(SPLIT)
    if found.intervals:
        return [When(interval=_one_interval(found))]
    if found.dom and found.days:
        raise PlanRefused("both a date and a weekday: cron would run on either; name one of them")
    if "minute" in found.every:
        if found != Facts(every={"minute"}):
            raise PlanRefused("'every minute' takes no time, day or date: say 'every 5 minutes' or 'hourly'")
        return [When(cron="* * * * *")]
    times = _clock_times(found)
    dow, dom, month = _calendar(found)
    if times is None:
        return [When(cron=f"{found.minute or 0} * {dom} {month} {dow}")]
    by_minute: dict[int, list[int]] = {}
    for hour, minute in sorted(set(times)):
        by_minute.setdefault(minute, []).append(hour)
    return [When(cron=f"{m} {','.join(map(str, hours))} {dom} {month} {dow}") for m, hours in by_minute.items()]


def _one_interval(found: Facts) -> int:
    if len(found.intervals) > 1:
        raise PlanRefused("two intervals: say one, e.g. 'every 30 seconds'")
    if found != Facts(intervals=found.intervals):
        raise PlanRefused(
            "an interval counts from when the schedule is made: it takes no clock time, day or date "
            "(say 'every day at 07:00', or the interval alone)"
        )
    return found.intervals[0]


def _clock_times(found: Facts) -> list[tuple[int, int]] | None:
    """The clock times, or None for an hourly schedule (at `found.minute` past each hour)."""
    if "hour" in found.every or (found.minute is not None and not found.times):
        if found.times or found.per_day or found.every - {"hour"}:
            raise PlanRefused("hourly runs at a minute past every hour: it takes no clock time or 'daily'")
        return None
    if found.minute is not None:
        raise PlanRefused("a minute past the hour and a clock time: say one, e.g. 'at 07:15'")
    if found.per_day:
        if found.times and len(found.times) != found.per_day:
            raise PlanRefused(f"{found.per_day} times a day, but {len(found.times)} clock times: make them agree")
        return found.times or words.TIMES_PER_DAY[found.per_day]
    return found.times or [(0, 0)]


def _calendar(found: Facts) -> tuple[str, str, str]:
    """Cron's day-of-week, day-of-month and month fields."""
    days, dom, months = set(found.days), set(found.dom), set(found.months)
    if "week" in found.every and not days:
        days = {1}  # weekly: Mondays, the first day of the ISO week
    if found.every & {"month", "year"} and not dom:
        if days:
            raise PlanRefused("monthly on a weekday: cron cannot say 'the first Monday'; name a date instead")
        dom = {1}
    if "year" in found.every and not months:
        months = {1}
    if months and not dom and "day" not in found.every:
        raise PlanRefused("which day of the month? e.g. 'on January 1st', or 'every day in January'")
    if any(not 1 <= day <= 31 for day in dom):
        raise PlanRefused(f"no month has a day {max(dom)}")
    return _field(days, weekdays=True), _field(dom), _field(months)


def _field(values: set[int], weekdays: bool = False) -> str:
    """A cron field: `*`, a list (1,15), or for weekdays a run of days as a range (1-5)."""
    if not values:
        return "*"
    ordered = sorted(values)
    if weekdays and len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}"
    return ",".join(map(str, ordered))
