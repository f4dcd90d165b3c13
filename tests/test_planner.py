"""The planner's rules on a corpus of prompts, English and Indonesian, each with the plan it must make (pure functions,
the repository's worker types); what it must refuse, and why; the model step's parsing and checks without a server
(tests/test_planner_http.py has the HTTP server, the API and the stack)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import pytest

from robotni.config import load_settings
from robotni.planner import execute, model, plan
from robotni.planner.plan import Planned, schedule_name
from robotni.planner.reading import PlanRefused
from robotni.schedules import dispatch, now
from robotni.worktypes.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent
TYPES = load_registry(ROOT / "workers")
NOW = datetime(2026, 3, 1, 12, 0, 0)
SETTINGS = load_settings()


def S(type_name: str, when: str | int, params: dict | None = None, timezone: str = "UTC") -> dict:
    """An expected schedule: cron when `when` is text, an interval in seconds when it is a number."""
    cron, interval = (when, None) if isinstance(when, str) else (None, when)
    return {"type": type_name, "params": params or {}, "cron": cron, "interval_seconds": interval, "timezone": timezone}


def planned(prompt: str, timezone: str = "UTC") -> plan.Plan:
    made = plan.by_rules(prompt, timezone, "default", TYPES)
    for one in made.schedules:
        plan.checked(one, TYPES, SETTINGS, NOW)  # exactly as POST /schedules would take it
    return made


def shape(one: Planned) -> dict:
    return {k: v for k, v in one.values().items() if k not in ("name", "project")}


ENGLISH = [
    ("run fakejob every 30 seconds", [S("fakejob", 30)]),
    ("helloworld every 90 seconds", [S("helloworld", 90)]),
    ("fakejob every 5 minutes", [S("fakejob", 300)]),
    ("helloworld every 2 hours", [S("helloworld", 7200)]),
    ("fakejob every two hours", [S("fakejob", 7200)]),
    ("fakejob every quarter hour", [S("fakejob", 900)]),
    ("fakejob every half hour", [S("fakejob", 1800)]),
    ("helloworld every 3 days", [S("helloworld", 3 * 86400)]),
    ("fakejob every minute", [S("fakejob", "* * * * *")]),
    ("helloworld every hour", [S("helloworld", "0 * * * *")]),
    ("helloworld hourly at minute 15", [S("helloworld", "15 * * * *")]),
    ("fakejob 15 minutes past the hour", [S("fakejob", "15 * * * *")]),
    ("run fakejob every day at 07:00", [S("fakejob", "0 7 * * *")]),
    ("helloworld daily at 7:30am", [S("helloworld", "30 7 * * *")]),
    ("fakejob daily", [S("fakejob", "0 0 * * *")]),
    ("helloworld every day at noon", [S("helloworld", "0 12 * * *")]),
    ("fakejob every day at midnight", [S("fakejob", "0 0 * * *")]),
    ("fakejob every day at 7 in the evening", [S("fakejob", "0 19 * * *")]),
    ("helloworld every day at 12:30pm", [S("helloworld", "30 12 * * *")]),
    ("helloworld at 6", [S("helloworld", "0 6 * * *")]),
    ("fakejob every weekday at 6pm", [S("fakejob", "0 18 * * 1-5")]),
    ("fakejob mon-fri at 7am", [S("fakejob", "0 7 * * 1-5")]),
    ("fakejob every sunday at 10", [S("fakejob", "0 10 * * 0")]),
    ("helloworld on mondays and thursdays at 14:00", [S("helloworld", "0 14 * * 1,4")]),
    ("fakejob every monday, wednesday and friday at 9:30", [S("fakejob", "30 9 * * 1,3,5")]),
    ("fakejob friday to monday at 10", [S("fakejob", "0 10 * * 0,1,5,6")]),
    ("fakejob every weekend at 9am", [S("fakejob", "0 9 * * 0,6")]),
    ("helloworld weekly", [S("helloworld", "0 0 * * 1")]),
    ("fakejob weekly at 08:00", [S("fakejob", "0 8 * * 1")]),
    ("helloworld monthly", [S("helloworld", "0 0 1 * *")]),
    ("fakejob at 8:15 on the first of the month", [S("fakejob", "15 8 1 * *")]),
    ("fakejob on the 15th of each month at 6pm", [S("fakejob", "0 18 15 * *")]),
    ("helloworld on the 1st and 15th of the month at 09:00", [S("helloworld", "0 9 1,15 * *")]),
    ("fakejob every year", [S("fakejob", "0 0 1 1 *")]),
    ("helloworld on january 1st at 00:05", [S("helloworld", "5 0 1 1 *")]),
    ("fakejob twice a day", [S("fakejob", "0 9,21 * * *")]),
    ("fakejob twice a day at 8 and 20", [S("fakejob", "0 8,20 * * *")]),
    ("fakejob three times a day", [S("fakejob", "0 8,14,20 * * *")]),
    ("fakejob at 9:00 and 17:30 on weekdays", [S("fakejob", "0 9 * * 1-5"), S("fakejob", "30 17 * * 1-5")]),
    ("helloworld at 9pm in Asia/Jakarta", [S("helloworld", "0 21 * * *", timezone="Asia/Jakarta")]),
    ("fakejob every day at 7 in asia/jakarta", [S("fakejob", "0 7 * * *", timezone="Asia/Jakarta")]),
    ("add x=1 y=2 every day at 07:00", [S("add", "0 7 * * *", {"x": 1, "y": 2})]),
    (
        "fakejob with delay_seconds=2 every day at 7 WIB",
        [S("fakejob", "0 7 * * *", {"delay_seconds": 2}, "Asia/Jakarta")],
    ),
    ("print a greeting every weekday at 6pm", [S("helloworld", "0 18 * * 1-5")]),  # by its description
    ("wait a random time every day at 7", [S("fakejob", "0 7 * * *")]),
    ("helloworld and fakejob every day at 7", [S("helloworld", "0 7 * * *"), S("fakejob", "0 7 * * *")]),
    ("hello world every hour; fakejob every 5 minutes", [S("helloworld", "0 * * * *"), S("fakejob", 300)]),
    ("helloworld every day at 7; every 30 seconds", [S("helloworld", "0 7 * * *"), S("helloworld", 30)]),
]
INDONESIAN = [
    ("jalankan helloworld tiap 30 detik", [S("helloworld", 30)]),
    ("helloworld tiap 10 detik", [S("helloworld", 10)]),
    ("jalankan fakejob setiap 5 menit", [S("fakejob", 300)]),
    ("helloworld tiap 2 jam", [S("helloworld", 7200)]),
    ("fakejob 30 menit sekali", [S("fakejob", 1800)]),
    ("fakejob setiap setengah jam", [S("fakejob", 1800)]),
    ("fakejob setiap menit", [S("fakejob", "* * * * *")]),
    ("helloworld setiap jam", [S("helloworld", "0 * * * *")]),
    ("fakejob harian jam 07:00", [S("fakejob", "0 7 * * *")]),
    ("fakejob tiap hari jam 7 pagi", [S("fakejob", "0 7 * * *")]),
    ("fakejob tiap jam 7", [S("fakejob", "0 7 * * *")]),
    ("helloworld setiap hari pukul 19.30", [S("helloworld", "30 19 * * *")]),
    ("fakejob jam 3 sore", [S("fakejob", "0 15 * * *")]),
    ("helloworld jam 7 malam setiap hari", [S("helloworld", "0 19 * * *")]),
    ("fakejob jam 12 siang", [S("fakejob", "0 12 * * *")]),
    ("fakejob jam 1 siang", [S("fakejob", "0 13 * * *")]),
    ("helloworld jam 2 malam", [S("helloworld", "0 2 * * *")]),
    ("helloworld jam setengah 8 pagi setiap hari", [S("helloworld", "30 7 * * *")]),
    ("helloworld sehari sekali jam 5 pagi", [S("helloworld", "0 5 * * *")]),
    ("fakejob setiap Senin jam 9 pagi", [S("fakejob", "0 9 * * 1")]),
    ("fakejob setiap hari Jumat jam 11", [S("fakejob", "0 11 * * 5")]),
    ("fakejob setiap Sabtu jam 23:30", [S("fakejob", "30 23 * * 6")]),
    ("helloworld setiap hari minggu jam 6 pagi", [S("helloworld", "0 6 * * 0")]),
    ("helloworld setiap Minggu jam 8", [S("helloworld", "0 8 * * 0")]),  # capitalised: Sunday
    ("fakejob setiap minggu jam 10", [S("fakejob", "0 10 * * 1")]),  # lower case: every week
    ("helloworld mingguan", [S("helloworld", "0 0 * * 1")]),
    ("helloworld hari kerja jam 08.00", [S("helloworld", "0 8 * * 1-5")]),
    ("helloworld senin sampai jumat jam 7 pagi WIB", [S("helloworld", "0 7 * * 1-5", timezone="Asia/Jakarta")]),
    ("fakejob senin, rabu dan jumat jam 16:00", [S("fakejob", "0 16 * * 1,3,5")]),
    ("helloworld akhir pekan jam 10 pagi", [S("helloworld", "0 10 * * 0,6")]),
    ("fakejob bulanan", [S("fakejob", "0 0 1 * *")]),
    ("helloworld tanggal 1 jam 9", [S("helloworld", "0 9 1 * *")]),
    ("fakejob setiap tanggal 1 dan 15 pukul 08:00", [S("fakejob", "0 8 1,15 * *")]),
    ("helloworld awal bulan jam 6", [S("helloworld", "0 6 1 * *")]),
    ("fakejob tahunan", [S("fakejob", "0 0 1 1 *")]),
    ("helloworld 17 agustus jam 10", [S("helloworld", "0 10 17 8 *")]),
    ("fakejob dua kali sehari", [S("fakejob", "0 9,21 * * *")]),
    ("helloworld tiga kali sehari", [S("helloworld", "0 8,14,20 * * *")]),
    ("fakejob dengan delay_seconds=1 setiap hari jam 06.00", [S("fakejob", "0 6 * * *", {"delay_seconds": 1})]),
    ("fakejob setiap hari jam 7 WITA", [S("fakejob", "0 7 * * *", timezone="Asia/Makassar")]),
    ("tambah add dengan x=2 y=3 tiap 1 menit", [S("add", 60, {"x": 2, "y": 3})]),
]


@pytest.mark.parametrize(("prompt", "expected"), ENGLISH + INDONESIAN, ids=[p for p, _ in ENGLISH + INDONESIAN])
def test_corpus_prompt_makes_its_plan(prompt, expected):
    made = planned(prompt)
    assert [shape(one) for one in made.schedules] == expected
    assert made.source == "rules"


def test_the_corpus_is_large_and_in_both_languages():
    assert len(ENGLISH) >= 30 and len(INDONESIAN) >= 30 and len(ENGLISH + INDONESIAN) >= 60


@pytest.mark.parametrize(
    ("prompt", "said"),
    [
        ("every weekday at 6pm run fakejob", {"type": "fakejob", "cron": "every weekday at 6pm"}),
        ("jalankan helloworld tiap 30 detik", {"type": "helloworld", "interval_seconds": "tiap 30 detik"}),
        (
            "fakejob with delay_seconds=2 harian jam 07:00 WIB",
            {"type": "fakejob", "params": "delay_seconds=2", "cron": "harian jam 07:00", "timezone": "WIB"},
        ),
        ("print a greeting daily", {"type": "print greeting", "cron": "daily"}),
    ],
)
def test_each_field_says_the_words_it_came_from(prompt, said):
    assert planned(prompt).schedules[0].said == said


def test_words_it_could_not_place_are_listed_and_fillers_are_not():
    made = planned("please run fakejob every day at 7 and make coffee")
    assert made.unplaced == ["make", "coffee"]
    assert planned("tolong jalankan fakejob setiap hari jam 7").unplaced == []


@pytest.mark.parametrize(
    ("prompt", "names"),
    [
        ("fakejob every day at 07:00", ["fakejob-daily-0700"]),
        ("fakejob twice a day", ["fakejob-daily-0900-2100"]),
        ("fakejob every weekday at 6pm", ["fakejob-weekdays-1800"]),
        ("fakejob setiap Senin jam 9 pagi", ["fakejob-mon-0900"]),
        ("fakejob at 8:15 on the first of the month", ["fakejob-day1-0815"]),
        ("helloworld tiap 30 detik", ["helloworld-every-30s"]),
        ("helloworld every 2 hours", ["helloworld-every-2h"]),
        ("helloworld hourly at minute 15", ["helloworld-hourly-at-15"]),
        ("helloworld on january 1st at noon", ["helloworld-jan-day1-1200"]),
    ],
)
def test_names_come_from_type_and_timing(prompt, names):
    assert [one.name for one in planned(prompt).schedules] == names


def test_the_same_timing_said_two_ways_has_one_name():
    assert planned("fakejob every day at 07:00").schedules[0].name == planned("fakejob harian jam 7").schedules[0].name


def test_a_cron_with_many_hours_or_ranges_gets_a_short_stable_name():
    many = "0 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 * * *"
    assert schedule_name("fakejob", many, None) == schedule_name("fakejob", many, None)
    assert len(schedule_name("fakejob", many, None)) <= plan.READABLE_NAME
    assert schedule_name("fakejob", "*/15 9-17 * * 1-5", None).startswith("fakejob-cron-")
    assert [schedule_name("add", None, n) for n in (0, 30, 120, 7200, 172800)] == [
        "add-every-0s",  # named in the 422 that refuses it
        "add-every-30s",
        "add-every-2m",
        "add-every-2h",
        "add-every-2d",
    ]


@pytest.mark.parametrize(
    ("prompt", "says"),
    [
        ("fakejob", "no time: say when"),
        ("jalankan fakejob", "no time: say when"),
        (
            "every day at 7",
            "no worker type matches: known types are add, backup-export, fakejob, helloworld, python-script, report-daily",
        ),
        ("setiap hari jam 7", "no worker type matches"),
        ("hello", "no time"),
        ("fakejob every day at around 7ish", "could not read '7ish'"),
        ("fakejob on the last day of the month", "could not read 'last'"),
        ("fakejob every day at 7 except sundays", "could not read 'except'"),
        ("fakejob malam", "could not read 'malam'"),
        ("fakejob every 30 seconds at 7", "an interval counts from when the schedule is made"),
        ("fakejob every 5 minutes on weekdays", "an interval counts from when the schedule is made"),
        ("fakejob at 25:00", "'25:00' is not a time of day"),
        ("fakejob at 13pm", "'13pm' is not a time of day"),
        ("fakejob every day at 7:99", "is not a time of day"),
        ("fakejob every monday on the first of the month", "both a date and a weekday"),
        ("fakejob five times a day", "say the times instead"),
        ("fakejob twice a day at 7", "2 times a day, but 1 clock times"),
        ("fakejob every january", "which day of the month?"),
        ("fakejob every minute at 7", "'every minute' takes no time"),
        ("fakejob hourly at 7", "hourly runs at a minute past every hour"),
        ("fakejob on the 32nd of the month", "no month has a day 32"),
        ("fakejob at 7 on monday and at 9 on friday", "give each its own clause"),
        ("helloworld at 7 and fakejob at 9", "give each its own clause"),
        ("helloworld every day at 7; fakejob", "no time"),
        ("fakejob delay_seconds=1 delay_seconds=2 every day", "delay_seconds is given twice"),
    ],
)
def test_a_prompt_it_cannot_plan_is_refused_saying_what_is_missing(prompt, says):
    with pytest.raises(PlanRefused) as refused:
        planned(prompt)
    assert says in str(refused.value)
    assert refused.value.errors


@pytest.mark.parametrize(
    ("prompt", "field", "inner"),
    [
        ("add every day at 7", "params", "x"),
        ("fakejob delay_seconds=500 every day", "params", "delay_seconds"),
        ("fakejob delay_seconds=soon every day", "params", "delay_seconds"),
        ("fakejob every 0 seconds", "interval_seconds", None),
        ("fakejob every day at 7 in Mars/Olympus", "timezone", None),
        ("fakejob daily at 7 WIB in UTC", "timezone", None),
        ("python-script script=nope.py every day at 7", "params", "script"),
    ],
)
def test_params_timing_and_timezone_are_checked_as_post_schedules_would(prompt, field, inner):
    with pytest.raises(PlanRefused) as refused:
        planned(prompt)
    assert field in refused.value.errors
    if inner:
        assert inner in refused.value.errors[field]


def test_the_request_timezone_is_used_unless_the_prompt_names_one():
    assert planned("fakejob every day at 7", "Asia/Jakarta").schedules[0].timezone == "Asia/Jakarta"
    assert planned("fakejob every day at 7 UTC", "Asia/Jakarta").schedules[0].timezone == "UTC"
    with pytest.raises(PlanRefused) as refused:
        plan.make("fakejob every day at 7", "Nowhere/Land", "default", TYPES, SETTINGS, NOW)
    assert "timezone" in refused.value.errors


def test_the_rules_are_deterministic():
    prompts = [prompt for prompt, _ in ENGLISH + INDONESIAN]
    first = [[one.values() for one in planned(p).schedules] for p in prompts]
    assert first == [[one.values() for one in planned(p).schedules] for p in prompts]


def test_without_a_model_configured_the_rules_plan_and_say_no_model_error():
    made = plan.make("fakejob every day at 7", "UTC", "default", TYPES, SETTINGS, NOW)
    assert not model.configured(SETTINGS)
    assert (made.source, made.model_error) == ("rules", None)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "must be http(s), not 'file'"),
        ("not a url", "unknown url type"),
        ("http://127.0.0.1:9/", "cannot be reached"),
    ],
)
def test_a_model_endpoint_that_is_no_http_url_or_unreachable_falls_back_to_the_rules(url, why):
    current = dataclasses.replace(SETTINGS, planner_llm_url=url, planner_llm_model="m", planner_llm_timeout=2.0)
    made = plan.make("fakejob every day at 7", "UTC", "default", TYPES, current, NOW)
    assert made.source == "rules" and why in made.model_error


def test_the_model_is_told_every_type_with_its_params_schema():
    told = model.instructions(TYPES)
    for name, wtype in TYPES.items():
        assert f"- {name}: {wtype.description}" in told
    assert '"delay_seconds"' in told and '"required": ["x", "y"]' in told


@pytest.mark.parametrize(
    "content", ['{"schedules": []}', '```json\n{"schedules": []}\n```', '```\n{"schedules": []}\n```']
)
def test_a_fenced_json_answer_is_read_as_json(content):
    assert model._unfenced(content) == '{"schedules": []}'


def test_a_prompt_plans_at_most_a_few_schedules():
    minutes = ", ".join(f"1:{m:02d}" for m in range(1, plan.MAX_SCHEDULES + 2))
    with pytest.raises(PlanRefused, match=f"at most {plan.MAX_SCHEDULES}"):
        planned(f"fakejob every day at {minutes}")


# --- making the schedules, on a real SQLite store ------------------------------------------------------------------


def made(prompt: str, **flags) -> list[execute.Outcome]:
    sent: list = []
    flags = {"dry_run": False, "run_immediately": False} | flags
    outcomes = execute.execute(planned(prompt), flags["dry_run"], flags["run_immediately"], NOW, sent.append, TYPES)
    assert len(sent) == (len(outcomes) if flags["run_immediately"] and not flags["dry_run"] else 0)
    return outcomes


def test_execute_finds_its_schedules_by_name_and_runs_them_once_now(store):
    [dry] = made("fakejob every day at 07:00", dry_run=True)
    assert dry.action == "would_create" and dispatch.by_name("fakejob-daily-0700") is None
    [first] = made("fakejob every day at 07:00", run_immediately=True)
    assert first.action == "created" and first.job_id is not None
    schedule = dispatch.get(first.schedule.id)
    assert schedule.last_job_id == first.job_id and schedule.next_run_at == datetime(2026, 3, 2, 7, 0)
    assert [job.id for _, job in dispatch.runs(schedule.id, 10)] == [first.job_id]
    [again] = made("fakejob harian jam 7")
    assert (again.action, again.schedule.id) == ("unchanged", schedule.id)
    [changed] = made("fakejob delay_seconds=0 harian jam 7")
    assert changed.action == "updated" and changed.schedule.params == {"delay_seconds": 0}


def test_a_name_the_schedules_file_or_another_project_holds_is_refused_before_any_write(store):
    dispatch.create({**planned("helloworld every 45 seconds").schedules[0].values(), "source": "file"}, NOW)
    with pytest.raises(execute.NameTaken, match="declared in"):
        made("fakejob every 45 seconds; helloworld every 45 seconds")
    assert dispatch.by_name("fakejob-every-45s") is None
    other = planned("fakejob every hour").schedules[0]
    dispatch.create({**other.values(), "project": "other"}, NOW)
    with pytest.raises(execute.NameTaken, match="another project"):
        made("fakejob every hour")


def test_a_schedule_gone_before_its_run_now_makes_no_job(store):
    [one] = made("helloworld every 2 hours")
    dispatch.remove(one.schedule.id)
    assert now.run_once(one.schedule, NOW, TYPES) == (None, [])
    assert dispatch.runs(one.schedule.id, 10) == []
