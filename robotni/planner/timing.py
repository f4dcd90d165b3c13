"""The time grammar: a clause's words about time, English or Indonesian, read into facts, then into cron or an
interval. Patterns run in a fixed order, each consuming what it read, so a reading never depends on luck.

"every N units" (seconds to weeks) is an interval counted from when the schedule is made; everything else is a
5-field cron expression read in the schedule's timezone. docs/planner.md lists the choices made here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from robotni.planner import words
from robotni.planner.reading import Clause, PlanRefused
from robotni.planner.words import DAY, EVERY, MONTH, NUMBER, ORDINAL, UNIT, B, E

NO_TIME = "no time: say when, e.g. 'every day at 07:00' or 'tiap 30 detik'"
PART = r"pagi|siang|sore|malam|in\s+the\s+(?:morning|afternoon|evening)|at\s+night|tonight"
AMPM = r"a\.?m\.?|p\.?m\.?"
ITEM = rf"\d{{1,2}}(?:[:.]\d{{2}})?(?:\s*(?:{AMPM}))?(?:\s+(?:{PART}))?"
ITEM_RE = re.compile(rf"(\d{{1,2}})(?:[:.](\d{{2}}))?(?:\s*({AMPM}))?(?:\s+({PART}))?")
AT = r"(?:(?:every|each|setiap|tiap)\s+)?(?:at|@|jam|pukul|pkl\.?)\s*"
LIST = r"\s*(?:,|and|dan|&)\s*"
DAY_PREFIX = r"(?:(?:on|every|each|setiap|tiap|pada)\s+)?(?:hari\s+)?"
MONTH_WORD = r"(?:the\s+|each\s+|every\s+)?month"
COUNT_RE = re.compile(r"once|twice|thrice|sekali|\d+|" + "|".join(sorted(words.NUMBER_WORDS, key=len, reverse=True)))


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(B + "(?:" + pattern + ")" + E)


@dataclass
class Facts:
    """What a clause says about time, before it becomes cron or an interval."""

    intervals: list[int] = field(default_factory=list)
    every: set[str] = field(default_factory=set)  # calendar units without a number: minute, hour, day, week, ...
    per_day: int | None = None
    times: list[tuple[int, int]] = field(default_factory=list)
    minute: int | None = None  # of every hour
    days: set[int] = field(default_factory=set)
    dom: set[int] = field(default_factory=set)
    months: set[int] = field(default_factory=set)
    clock_groups: int = 0  # separate mentions of clock times: "at 7 on monday and at 9 on friday" has two


Reader = tuple[re.Pattern[str], Callable[[re.Match[str], Facts], None]]


def _interval(seconds: int) -> Callable[[re.Match[str], Facts], None]:
    return lambda m, f: f.intervals.append(seconds)


def _counted(m: re.Match[str], f: Facts) -> None:
    f.intervals.append(words.number(m.group(1) or m.group(3)) * words.unit_seconds(m.group(2) or m.group(4)))


def _unit(unit: str) -> Callable[[re.Match[str], Facts], None]:
    return lambda m, f: f.every.add(unit)


def _per_day(m: re.Match[str], f: Facts) -> None:
    said = COUNT_RE.search(m.group())
    assert said is not None  # every times-a-day pattern holds a count
    word = said.group()
    count = words.TIMES_WORDS[word] if word in words.TIMES_WORDS else words.number(word)
    if count not in words.TIMES_PER_DAY:
        raise PlanRefused(f"{m.group().strip()!r}: say the times instead, e.g. 'at 6, 12 and 18'")
    if count == 1:
        f.every.add("day")
    else:
        f.per_day = count


def _ordinals(m: re.Match[str], f: Facts) -> None:
    for item in re.finditer(ORDINAL + r"|(?<![\w:])(\d{1,2})(?![\w:])", m.group()):
        f.dom.add(words.ordinal(item.group(1) or item.group(3), item.group(2)))


def _month_day(month: int, day: int) -> Callable[[re.Match[str], Facts], None]:
    def read(m: re.Match[str], f: Facts) -> None:
        f.months.add(words.month_number(m.group(month)))
        f.dom.add(int(m.group(day)))

    return read


def _days(m: re.Match[str], f: Facts) -> None:
    f.days.add(words.day_number(m.group(1)))


def _day_range(m: re.Match[str], f: Facts) -> None:
    first, last = words.day_number(m.group(1)), words.day_number(m.group(2))
    f.days.update(day % 7 for day in range(first, last + (7 if last < first else 0) + 1))


def _minute(m: re.Match[str], f: Facts) -> None:
    f.minute = _checked_minute(int(next(g for g in m.groups() if g)), m.group())


def _times(m: re.Match[str], f: Facts) -> None:
    f.clock_groups += 1
    for item in ITEM_RE.finditer(m.group()):
        minute = _checked_minute(int(item.group(2) or 0), item.group())
        f.times.append(clock(int(item.group(1)), minute, item.group(3), item.group(4), item.group()))


def _half_past(m: re.Match[str], f: Facts) -> None:
    """'jam setengah 8' is half an hour before 8: 07:30."""
    hour = int(m.group(1))
    if not 1 <= hour <= 24:
        raise PlanRefused(f"{m.group().strip()!r} is not a time of day")
    f.times.append(clock(hour - 1, 30, None, m.group(2), m.group()))
    f.clock_groups += 1


def _named_time(m: re.Match[str], f: Facts) -> None:
    f.times.append((0, 0) if "night" in m.group(1) or "malam" in m.group(1) else (12, 0))
    f.clock_groups += 1


def _checked_minute(minute: int, said: str) -> int:
    if minute > 59:
        raise PlanRefused(f"{said.strip()!r} is not a time of day")
    return minute


def clock(hour: int, minute: int, ampm: str | None, part: str | None, said: str) -> tuple[int, int]:
    """The hour on a 24-hour clock: "6pm", "jam 3 sore" (15), "jam 7 malam" (19), "jam 12 malam" (0)."""
    part = " ".join(part.split()) if part else None
    if ampm is not None:
        if not 1 <= hour <= 12:
            raise PlanRefused(f"{said.strip()!r} is not a time of day")
        return hour % 12 + (12 if ampm.startswith("p") else 0), minute
    if hour > 23:
        raise PlanRefused(f"{said.strip()!r} is not a time of day")
    if part in ("pagi", "in the morning") and hour <= 12:
        hour %= 12
    elif (part == "siang" and hour <= 5) or (part in ("sore", "in the afternoon") and hour < 12):
        hour += 12
    elif part in ("malam", "in the evening", "at night", "tonight") and hour <= 12:
        hour = 0 if hour == 12 else hour + 12 if hour >= 6 else hour  # "jam 2 malam" is 02:00, the small hours
    return hour, minute


def _not_sunday(clause: Clause) -> Callable[[re.Match[str]], bool]:
    """'setiap minggu' is every week; 'setiap Minggu', capitalised, is every Sunday."""
    return lambda m: "Minggu" not in clause.original(m)


# In this order: intervals, then calendar words, then days, dates and clock times.
READERS: list[Reader] = [
    (_re(rf"{EVERY}\s+(?:half\s+(?:an\s+)?hour|setengah\s+jam)"), _interval(1800)),
    (_re(rf"{EVERY}\s+quarter(?:\s+of\s+an)?\s+hour|{EVERY}\s+seperempat\s+jam"), _interval(900)),
    (_re(rf"{EVERY}\s+{NUMBER}\s*{UNIT}|{NUMBER}\s*{UNIT}\s+sekali"), _counted),
    (
        _re(
            rf"(once|twice|thrice|{NUMBER}\s*(?:times|x))\s+(?:a|per|each|every)\s+day|twice\s+daily"
            rf"|(sekali|{NUMBER}\s*(?:x|kali))\s+(?:sehari|(?:per|setiap|tiap)\s+hari)"
            rf"|sehari\s+(sekali|{NUMBER}\s*(?:x|kali))"
        ),
        _per_day,
    ),
    (_re(rf"{EVERY}\s+(?:single\s+)?(?:minute|menit)"), _unit("minute")),
    (
        _re(rf"hourly|{EVERY}\s+hour|once\s+an?\s+hour|sejam\s+sekali|(?:setiap|tiap|per)\s+jam(?!\s*(?:\d|setengah))"),
        _unit("hour"),
    ),
    (
        _re(rf"daily|everyday|{EVERY}\s+day|harian|(?:setiap|tiap|per)\s+hari(?!\s+(?:{DAY}|kerja)(?![\w'-]))"),
        _unit("day"),
    ),
    (
        _re(rf"monthly|{EVERY}\s+month|once\s+a\s+month|bulanan|sebulan\s+sekali|(?:setiap|tiap|per)\s+bulan"),
        _unit("month"),
    ),
    (
        _re(rf"yearly|annually|{EVERY}\s+year|once\s+a\s+year|tahunan|setahun\s+sekali|(?:setiap|tiap|per)\s+tahun"),
        _unit("year"),
    ),
]
WEEKLY = _re(
    rf"weekly|{EVERY}\s+week|once\s+a\s+week|mingguan|seminggu\s+sekali|(?:setiap|tiap|per)\s+(?:minggu|pekan)"
)
DATES: list[Reader] = [
    (
        _re(
            rf"(?:on\s+)?(?:the\s+)?(?:{ORDINAL})(?:{LIST}(?:the\s+)?(?:{ORDINAL}))*(?:\s+day)?\s+of\s+{MONTH_WORD}"
            rf"|(?:on\s+)?day\s+\d{{1,2}}(?:{LIST}\d{{1,2}})*\s+of\s+{MONTH_WORD}"
            rf"|on\s+the\s+(?:{ORDINAL})(?:{LIST}(?:the\s+)?(?:{ORDINAL}))*"
            rf"|(?:(?:setiap|tiap|pada)\s+)?(?:tanggal|tgl\.?)\s*\d{{1,2}}(?:{LIST}\d{{1,2}})*"
            rf"(?:\s+(?:setiap|tiap)\s+bulan(?:nya)?)?"
        ),
        _ordinals,
    ),
    (
        _re(r"(?:(?:setiap|tiap|pada)\s+)?(?:awal\s+bulan|start\s+of\s+(?:the\s+|each\s+)?month)"),
        lambda m, f: f.dom.add(1),
    ),
    (_re(rf"(?:on\s+)?{MONTH}\s+(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?"), _month_day(1, 2)),
    (_re(rf"(?:on\s+)?(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH}"), _month_day(2, 1)),
    (_re(rf"(?:in|every|each|setiap|tiap|bulan)\s+{MONTH}"), lambda m, f: f.months.add(words.month_number(m.group(1)))),
]
WEEKDAYS: list[Reader] = [
    (
        _re(rf"{DAY_PREFIX}(?:the\s+)?(?:weekdays?|working\s+days?|business\s+days?|hari\s+kerja)"),
        lambda m, f: f.days.update(range(1, 6)),
    ),
    (_re(rf"{DAY_PREFIX}(?:the\s+)?(?:weekends?|akhir\s+pekan)"), lambda m, f: f.days.update({0, 6})),
    (
        _re(
            rf"{DAY_PREFIX}{DAY}\s*(?:-|\u2013|to|through|thru|until|till|sampai|hingga|s/d|s\.d\.?)\s*(?:hari\s+)?{DAY}"
        ),
        _day_range,
    ),
    (_re(rf"{DAY_PREFIX}{DAY}"), _days),
]
CLOCK: list[Reader] = [
    (
        _re(
            r"(?:at\s+)?(?:minute|menit)(?:\s+ke)?[\s-]*(\d{1,2})"
            r"|(\d{1,2})\s+(?:minutes?\s+)?past\s+(?:the|every|each)\s+hour|at\s+:(\d{2})"
        ),
        _minute,
    ),
    (_re(rf"(?:{AT})?(noon|midday|tengah\s+hari|midnight|tengah\s+malam)"), _named_time),
    (_re(rf"(?:jam|pukul)\s+setengah\s+(\d{{1,2}})(?:\s+({PART}))?"), _half_past),
    (_re(rf"{AT}{ITEM}(?:{LIST}(?:(?:at|jam|pukul)\s+)?{ITEM})*"), _times),
    (
        _re(rf"\d{{1,2}}[:.]\d{{2}}(?:\s*(?:{AMPM}))?(?:\s+(?:{PART}))?|\d{{1,2}}\s*(?:{AMPM})(?:\s+(?:{PART}))?"),
        _times,
    ),
]


def facts(clause: Clause) -> Facts:
    """Read every word about time in the clause (consumed as `timing`)."""
    found = Facts()
    _read(clause, READERS, found)
    for _ in clause.take(WEEKLY, "timing", _not_sunday(clause)):
        found.every.add("week")
    _read(clause, [*DATES, *WEEKDAYS, *CLOCK], found)
    return found


def _read(clause: Clause, readers: list[Reader], found: Facts) -> None:
    for pattern, read in readers:
        for match in clause.take(pattern, "timing"):
            read(match, found)


ZONE_RE = _re(r"(?:(?:in|di|zona\s+waktu|timezone|tz)\s+)?([a-z]+(?:/[a-z0-9_+-]+)+|wib|wita|wit|utc|gmt)(?:\s+time)?")


def zone_named(clause: Clause) -> str | None:
    """A timezone the clause names (WIB, Asia/Jakarta), consumed as `timezone`; None when it names none."""
    named = [clause.raw[m.start(1) : m.end(1)] for m in clause.take(ZONE_RE, "timezone")]
    if len(set(map(str.lower, named))) > 1:
        raise PlanRefused(f"two timezones: {', '.join(named)}; name one", {"timezone": ["two timezones named"]})
    if not named:
        return None
    return words.ZONE_WORDS.get(named[0].lower(), named[0])
