"""Schedules, dispatch, the schedules file and cleanup, on a real SQLite store with the clock passed in."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from robotni.schedules import dispatch, file
from robotni.schedules.dispatch import InvalidSchedule, Timing
from robotni.status import JobStatus
from robotni.store import creation, deliveries, events, jobs, queries, retention, subscriptions, workflows
from robotni.store.engine import engine
from robotni.store.models import Attempt, Event, Job, LogChunk, Schedule, ScheduleRun, WebhookDelivery, utcnow
from robotni.worktypes.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent
TYPES = load_registry(ROOT / "workers")
T0 = datetime(2026, 3, 1, 12, 0, 0)  # naive UTC, as the store keeps it


def make(name: str, now: datetime = T0, **values) -> Schedule:
    fields = {"type": "add", "params": {"x": 1, "y": 2}, "project": "p", "venv": None, "cron": None}
    fields |= {"timezone": "UTC", "interval_seconds": None, "enabled": True, **values}
    return dispatch.create({"name": name, **fields}, now)


def published() -> tuple[list[Job], Callable[[Job], None]]:
    sent: list[Job] = []
    return sent, sent.append


def count(model, *where) -> int:
    with engine().connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


# --- timing: pure functions of now -------------------------------------------------------------------------


def test_cron_is_read_in_its_timezone():
    jakarta = Timing("0 7 * * *", "Asia/Jakarta")  # UTC+7, no daylight saving
    first = jakarta.first(T0)
    assert first == datetime(2026, 3, 2, 0, 0)  # 07:00 in Jakarta is midnight UTC
    assert jakarta.following(first, first + timedelta(seconds=1)) == datetime(2026, 3, 3, 0, 0)
    assert jakarta.first(datetime(2026, 3, 1, 23, 59)) == datetime(2026, 3, 2, 0, 0)
    assert Timing("0 7 * * *", "UTC").first(T0) == datetime(2026, 3, 2, 7, 0)


def test_cron_runs_once_when_the_clocks_go_back_and_once_when_they_go_forward():
    berlin = Timing("30 2 * * *", "Europe/Berlin")
    autumn = berlin.first(datetime(2026, 10, 24, 12, 0))
    assert autumn == datetime(2026, 10, 25, 0, 30)  # 02:30 CEST
    assert berlin.following(autumn, autumn) == datetime(2026, 10, 26, 1, 30)  # not 02:30 CET an hour later
    spring = berlin.first(datetime(2026, 3, 28, 12, 0))  # 02:30 does not exist on the 29th
    assert spring == datetime(2026, 3, 29, 1, 0)
    assert berlin.following(spring, spring) == datetime(2026, 3, 30, 0, 30)


def test_interval_keeps_its_phase_and_skips_missed_slots():
    every = Timing(interval=60)
    assert every.first(T0) == T0 + timedelta(seconds=60)
    due = T0 + timedelta(seconds=60)
    assert every.following(due, due + timedelta(seconds=0.4)) == T0 + timedelta(seconds=120)
    assert every.following(due, due + timedelta(hours=1, seconds=5)) == due + timedelta(seconds=3660)
    assert every.following(due, due + timedelta(seconds=60)) == due + timedelta(seconds=120)


@pytest.mark.parametrize(
    ("timing", "field"),
    [
        (Timing("0 7 * *"), "cron"),
        (Timing("0 7 * * * *"), "cron"),
        (Timing("@daily"), "cron"),
        (Timing("61 * * * *"), "cron"),
        (Timing("0 0 30 2 *"), "cron"),  # never comes
        (Timing("0 7 * * *", "Mars/Olympus_Mons"), "timezone"),
        (Timing("0 7 * * *", "../../etc/passwd"), "timezone"),
        (Timing("0 7 * * *", "America"), "timezone"),  # a folder of zones, not a zone
        (Timing(), "cron"),
        (Timing("* * * * *", interval=5), "cron"),
        (Timing(interval=0), "interval_seconds"),
    ],
)
def test_bad_timing_names_the_field(timing, field):
    with pytest.raises(InvalidSchedule) as caught:
        timing.check(T0)
    assert caught.value.field == field


# --- dispatch -------------------------------------------------------------------------------------------------


def test_interval_schedule_makes_one_job_per_due_time(store):
    schedule = make("every-10", interval_seconds=10)
    sent, publish = published()
    assert dispatch.dispatch(T0 + timedelta(seconds=9), publish, TYPES) == []
    made = dispatch.dispatch(T0 + timedelta(seconds=10.3), publish, TYPES)
    assert [j.id for j in sent] == [j.id for j in made] and len(made) == 1
    job = jobs.get(made[0].id)
    assert (job.status, job.type, job.project, job.params, job.queue) == (
        "queued",
        "add",
        "p",
        {"x": 1, "y": 2},
        "default",
    )
    assert dispatch.dispatch(T0 + timedelta(seconds=10.5), publish, TYPES) == []  # the same due time again
    row = dispatch.get(schedule.id)
    assert row.next_run_at == T0 + timedelta(seconds=20)
    assert row.last_job_id == job.id and row.last_run_at == T0 + timedelta(seconds=10.3)
    assert [(run.due_at, run.job_id) for run, _ in dispatch.runs(schedule.id, 10)] == [
        (T0 + timedelta(seconds=10), job.id)
    ]


def test_cron_schedule_in_jakarta_dispatches_at_seven_local(store):
    schedule = make("morning", cron="0 7 * * *", timezone="Asia/Jakarta")
    _sent, publish = published()
    assert dispatch.dispatch(datetime(2026, 3, 1, 23, 59, 59), publish, TYPES) == []
    assert len(dispatch.dispatch(datetime(2026, 3, 2, 0, 0, 1), publish, TYPES)) == 1
    assert dispatch.get(schedule.id).next_run_at == datetime(2026, 3, 3, 0, 0)


def test_disabled_schedule_makes_nothing_and_enabling_counts_from_then(store):
    schedule = make("switch", interval_seconds=10)
    _sent, publish = published()
    off = dispatch.change(schedule, {"enabled": False}, T0 + timedelta(seconds=1))
    assert off.next_run_at is None
    assert dispatch.dispatch(T0 + timedelta(hours=5), publish, TYPES) == []
    on_at = T0 + timedelta(hours=5, seconds=3)
    on = dispatch.change(off, {"enabled": True}, on_at)
    assert on.next_run_at == on_at + timedelta(seconds=10)  # no catching up for the time it was off
    assert dispatch.dispatch(on_at + timedelta(seconds=9), publish, TYPES) == []
    assert len(dispatch.dispatch(on_at + timedelta(seconds=10), publish, TYPES)) == 1


def test_update_takes_effect_at_the_next_dispatch(store):
    schedule = make("edited", interval_seconds=3600)
    _sent, publish = published()
    assert dispatch.dispatch(T0 + timedelta(seconds=5), publish, TYPES) == []
    edited = dispatch.change(schedule, {"interval_seconds": 5, "params": {"x": 5, "y": 5}}, T0 + timedelta(seconds=6))
    assert edited.next_run_at == T0 + timedelta(seconds=11)
    made = dispatch.dispatch(T0 + timedelta(seconds=11), publish, TYPES)
    assert [j.params for j in made] == [{"x": 5, "y": 5}]
    dispatch.change(edited, {"cron": "*/15 * * * *", "interval_seconds": None}, T0 + timedelta(seconds=12))
    assert dispatch.get(schedule.id).next_run_at == T0 + timedelta(minutes=15)
    # Unchanged timing: the next run stays where it was.
    assert dispatch.change(dispatch.get(schedule.id), {"project": "q"}, T0 + timedelta(minutes=1)).next_run_at == (
        T0 + timedelta(minutes=15)
    )


def test_after_downtime_a_schedule_runs_once_not_once_per_missed_slot(store):
    every_minute = make("minutely", interval_seconds=60)
    hourly = make("hourly", cron="0 * * * *")
    sent, publish = published()
    back = T0 + timedelta(days=1, seconds=30)  # 1440 minutes and 24 hours missed
    made = dispatch.dispatch(back, publish, TYPES)
    assert sorted(j.id for j in made) == sorted(j.id for j in sent) and len(made) == 2
    assert dispatch.get(every_minute.id).next_run_at == T0 + timedelta(days=1, minutes=1)  # phase kept
    assert dispatch.get(hourly.id).next_run_at == T0 + timedelta(days=1, hours=1)
    assert dispatch.dispatch(back + timedelta(seconds=1), publish, TYPES) == []
    assert count(Job) == 2


def test_two_dispatches_at_once_make_one_job_per_due_time(store, monkeypatch):
    """Two beats by mistake: both read every schedule as due before either writes; still one job each."""
    for n in range(20):
        make(f"s{n:02d}", interval_seconds=10)
    barrier = threading.Barrier(2, timeout=20)
    read_due = dispatch.due

    def due_then_wait(now, limit=dispatch.BATCH):
        found = read_due(now, limit)
        barrier.wait()  # both have the same due list before either starts firing
        return found

    monkeypatch.setattr(dispatch, "due", due_then_wait)
    for tick in range(1, 4):
        now = T0 + timedelta(seconds=10 * tick + 0.2)
        results: list[list[Job]] = []
        errors: list[BaseException] = []

        def beat(now=now, results=results, errors=errors):
            try:
                results.append(dispatch.dispatch(now, lambda job: None, TYPES))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=beat) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
        made = [job.id for result in results for job in result]
        assert len(made) == len(set(made)) == 20, (tick, [len(r) for r in results])
    assert count(Job) == count(ScheduleRun) == 60
    with engine().connect() as conn:
        per_due = conn.execute(
            select(ScheduleRun.schedule_id, ScheduleRun.due_at, func.count()).group_by(
                ScheduleRun.schedule_id, ScheduleRun.due_at
            )
        ).all()
    assert {n for *_, n in per_due} == {1}


def test_a_second_insert_for_the_same_due_time_is_refused(store):
    """The unique (schedule, due time) row holds even when the compare-and-set is bypassed."""
    schedule = make("once", interval_seconds=10)
    due = schedule.next_run_at
    assert dispatch.fire(schedule, due, TYPES) is not None
    with engine().begin() as conn:  # put the schedule back as if the first run never moved it on
        conn.execute(update(Schedule).where(Schedule.id == schedule.id).values(next_run_at=due))
    assert dispatch.fire(dispatch.get(schedule.id), due, TYPES) is None
    assert count(Job) == 1


def test_a_schedule_whose_type_went_away_makes_no_job_and_says_why(store):
    schedule = make("orphan", interval_seconds=10, type="vanished")
    _sent, publish = published()
    assert dispatch.dispatch(T0 + timedelta(seconds=10), publish, TYPES) == []
    row = dispatch.get(schedule.id)
    assert "vanished" in row.last_error and row.next_run_at == T0 + timedelta(seconds=20)
    assert count(Job) == 0


def test_a_schedule_that_made_no_job_is_a_schedule_failed_delivery_until_the_retention(store):
    """Written with last_error, for the subscriptions to schedule.failed of its project only; the retention and
    the schedule's removal take it away."""
    asked = subscriptions.create("https://a.example/", ["schedule.failed"], ["p"], "whsec_eA==")
    subscriptions.create("https://b.example/", ["schedule.failed"], ["other"], "whsec_eA==")
    subscriptions.create("https://c.example/", ["job.failed"], [], "whsec_eA==")
    broken = make("broken", interval_seconds=10, type="vanished")
    make("healthy", interval_seconds=10)
    dispatch.dispatch(T0 + timedelta(seconds=10), published()[1], TYPES)
    [(delivery, type_)] = deliveries.of_subscription(asked.id, 10)
    assert type_ == "schedule.failed" and delivery.job_id == broken.id and count(WebhookDelivery) == 1
    sent = json.loads(deliveries.payload(delivery.event_id))
    assert (
        sent["data"] == events.schedule_snapshot(dispatch.get(broken.id)) and "vanished" in sent["data"]["last_error"]
    )
    dispatch.dispatch(T0 + timedelta(seconds=20), published()[1], TYPES)
    assert count(Event, Event.job_id == broken.id) == count(WebhookDelivery) == 1  # failing the same way: no news
    later = T0 + timedelta(days=8)
    assert retention.remove_old_schedule_events(later, timedelta(days=9)) == 0
    assert retention.remove_old_schedule_events(later, timedelta(days=7)) == 1 and count(WebhookDelivery) == 0
    with engine().begin() as conn:
        conn.execute(update(Schedule).where(Schedule.id == broken.id).values(type="gone"))
    dispatch.dispatch(T0 + timedelta(seconds=30), published()[1], TYPES)
    assert count(Event, Event.job_id == broken.id) == count(WebhookDelivery) == 1  # failing another way
    assert dispatch.remove(broken.id) and count(Event, Event.job_id == broken.id) == count(WebhookDelivery) == 0


def test_a_schedule_whose_timezone_went_away_runs_once_more_then_stops_without_holding_up_others(store):
    gone = make("gone-zone", cron="0 * * * *", timezone="Europe/Berlin")
    healthy = make("healthy", interval_seconds=10)
    with engine().begin() as conn:  # as if an upgrade of tzdata had dropped the zone
        conn.execute(update(Schedule).where(Schedule.id == gone.id).values(timezone="Gone/Zone"))
    _sent, publish = published()
    made = dispatch.dispatch(T0 + timedelta(hours=1), publish, TYPES)
    assert {j.id for j in made} == {dispatch.get(gone.id).last_job_id, dispatch.get(healthy.id).last_job_id}
    row = dispatch.get(gone.id)
    assert row.next_run_at is None and "Gone/Zone" in row.last_error
    assert dispatch.dispatch(T0 + timedelta(hours=3), publish, TYPES)[0].type == "add"  # only the healthy one
    assert count(ScheduleRun, ScheduleRun.schedule_id == gone.id) == 1


def test_a_failed_publish_leaves_the_job_queued_for_the_reaper(store):
    make("a", interval_seconds=10)
    make("b", interval_seconds=10)

    def broken(job):
        raise ConnectionError("broker down")

    made = dispatch.dispatch(T0 + timedelta(seconds=10), broken, TYPES)
    assert len(made) == 2
    assert {jobs.get(j.id).status for j in made} == {"queued"}


# --- the schedules file ----------------------------------------------------------------------------------


def test_schedules_file_is_loaded_updated_and_pruned(store):
    path = store / "schedules.yaml"
    path.write_text(
        """
schedules:
  - name: morning-report
    type: fakejob
    params: {delay_seconds: 0}
    cron: "0 7 * * *"
    timezone: Asia/Jakarta
  - name: tick
    type: helloworld
    interval_seconds: 60
"""
    )
    assert file.sync(path, T0, TYPES) == {"created": 2, "updated": 0, "removed": 0}
    report = dispatch.by_name("morning-report")
    assert (report.source, report.source_file, report.next_run_at) == ("file", str(path), datetime(2026, 3, 2))
    later = T0 + timedelta(seconds=30)
    assert file.sync(path, later, TYPES) == {"created": 0, "updated": 0, "removed": 0}
    assert dispatch.by_name("tick").next_run_at == T0 + timedelta(seconds=60)  # a restart does not shift it
    api_made = make("from-api", interval_seconds=5)
    path.write_text(json.dumps([{"name": "tick", "type": "helloworld", "interval_seconds": 30}]))
    assert file.sync(path, later, TYPES) == {"created": 0, "updated": 1, "removed": 1}
    assert dispatch.by_name("tick").next_run_at == later + timedelta(seconds=30)
    assert dispatch.by_name("morning-report") is None
    assert dispatch.get(api_made.id) is not None  # API schedules are not the file's business


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("- {name: a, type: add, params: {x: 1, y: 2}, cron: '0 7 * *'}", "5-field"),
        ("- {name: a, type: add, params: {x: 1, y: 2}, cron: '0 7 * * *', timezone: Nowhere/Land}", "timezone"),
        ("- {name: a, type: add, params: {x: one, y: 2}, interval_seconds: 5}", "params"),
        ("- {name: a, type: nope, interval_seconds: 5}", "nope"),
        (
            "- {name: a, type: helloworld, interval_seconds: 5}\n- {name: a, type: helloworld, interval_seconds: 6}",
            "twice",
        ),
        ("- {name: 'bad name!', type: helloworld, interval_seconds: 5}", "name"),
        ("schedules: {a: 1}", "list"),
        ("- [unclosed", "cannot read"),
        ("- {name: taken, type: helloworld, interval_seconds: 5}", "API"),
        ("- {name: w, interval_seconds: 5, workflow: {name: w, steps: [{name: s, type: nope}]}}", "nope"),
        (
            "- {name: w, interval_seconds: 5, workflow: {name: w, steps: [{name: s, type: helloworld, depends_on: [s]}]}}",
            "cycle",
        ),
    ],
)
def test_bad_schedules_file_changes_nothing_and_says_why(store, content, reason):
    make("taken", interval_seconds=5)
    path = store / "schedules.yaml"
    path.write_text(content)
    with pytest.raises(file.ScheduleFileError, match=reason):
        file.sync(path, T0, TYPES)
    assert [s.name for s in dispatch.listing()] == ["taken"]


# --- cleanup ----------------------------------------------------------------------------------------------


def _job(status: JobStatus, ended_days_ago: float | None, now: datetime) -> str:
    job, _ = creation.create(type="add", project="p", params={}, queue="default", max_attempts=1, venv=None)
    moment = now - timedelta(days=ended_days_ago or 30)
    values = {"status": status.value, "created_at": moment, "updated_at": moment}
    if ended_days_ago is not None:
        values["finished_at"] = moment
    with engine().begin() as conn:
        conn.execute(update(Job).where(Job.id == job.id).values(**values))
        conn.execute(
            Attempt.__table__.insert().values(job_id=job.id, number=1, status=status.value, finished_at=moment)
        )
    return job.id


def test_cleanup_removes_old_finished_jobs_and_keeps_the_rest(store):
    now = utcnow()
    jobs_dir, processed = store / "jobs", store / "broker" / "processed"
    old = {
        s: _job(s, 8, now) for s in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT)
    }
    recent = _job(JobStatus.COMPLETED, 6, now)
    unfinished = [_job(s, None, now) for s in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.RUNNING)]
    kept = [recent, *unfinished]
    for job_id in [*old.values(), *kept]:
        (jobs_dir / job_id / "scratch").mkdir(parents=True)
        (jobs_dir / job_id / "output.log").write_text("log")
    schedule = make("s", interval_seconds=10)
    with engine().begin() as conn:
        conn.execute(
            LogChunk.__table__.insert(), [{"job_id": j, "start": 0, "data": b"log"} for j in [*old.values(), *kept]]
        )
        conn.execute(
            ScheduleRun.__table__.insert().values(
                schedule_id=schedule.id, due_at=now, job_id=old[JobStatus.COMPLETED], created_at=now
            )
        )
    orphan, young_orphan = jobs_dir / "no-such-job", jobs_dir / "another-one"
    orphan.mkdir()
    young_orphan.mkdir()
    ten_days_ago = (now - timedelta(days=10) - datetime(1970, 1, 1)).total_seconds()
    os.utime(orphan, (ten_days_ago, ten_days_ago))
    processed.mkdir(parents=True)
    (processed / "1_abc.default.msg").write_text("{}")

    counts = retention.run(now, 7, jobs_dir, processed)

    assert counts == {"jobs": 4, "workflows": 0, "schedule_events": 0, "orphan_folders": 1, "processed_messages": 0}
    for job_id in old.values():
        assert jobs.get(job_id) is None and not (jobs_dir / job_id).exists()
        assert queries.attempts_of(job_id) == [] and queries.output_of(job_id, 0, 10) == b""
    for job_id in kept:
        assert jobs.get(job_id) is not None and (jobs_dir / job_id / "output.log").exists()
        assert len(queries.attempts_of(job_id)) == 1 and queries.output_of(job_id, 0, 10) == b"log"
    assert count(ScheduleRun) == 0
    assert not orphan.exists() and young_orphan.exists()
    assert (processed / "1_abc.default.msg").exists()  # a message consumed just now stays a minute
    in_two_minutes = utcnow() + timedelta(minutes=2)
    assert retention.remove_processed_messages(in_two_minutes, processed) == 1
    assert list(processed.iterdir()) == []


def test_a_workflow_schedule_makes_one_workflow_per_due_time_and_publishes_its_first_steps(store):
    steps = [
        {"name": "check", "type": "add", "params": {"x": 1, "y": 2}, "depends_on": []},
        {"name": "report", "type": "helloworld", "params": {}, "depends_on": ["check"]},
    ]
    steps = [{"venv": None, "on_parent_failure": "cancel", **step} for step in steps]
    schedule = make(
        "wf", type=None, params={}, workflow={"name": "check-then-report", "steps": steps}, interval_seconds=10
    )
    sent, publish = published()
    made = dispatch.dispatch(T0 + timedelta(seconds=10), publish, TYPES)
    assert [job.step for job in made] == ["check"] and sent == made
    found = workflows.get(made[0].workflow_id)
    assert found.workflow.name == "check-then-report" and found.status == "running"
    jobs_made, edges = workflows.steps(found.workflow.id)
    assert {job.step: job.status for job in jobs_made} == {"check": "queued", "report": "waiting"}
    assert edges == [("report", "check")] and dispatch.get(schedule.id).last_job_id == made[0].id
    assert dispatch.dispatch(T0 + timedelta(seconds=10.5), publish, TYPES) == []  # the same due time again
    bad = {"name": "x", "steps": [{**steps[0], "type": "gone"}]}
    broken = make("broken-wf", type=None, params={}, workflow=bad, interval_seconds=10)
    assert dispatch.dispatch(T0 + timedelta(seconds=20), publish, TYPES)[0].step == "check"  # only the healthy one
    assert "gone" in dispatch.get(broken.id).last_error


def test_a_schedules_file_declares_a_workflow(store):
    path = store / "schedules.yaml"
    path.write_text(
        "- name: nightly\n  interval_seconds: 60\n  workflow:\n    name: nightly\n    steps:\n"
        "      - {name: a, type: helloworld}\n      - {name: b, type: helloworld, depends_on: [a]}\n"
    )
    assert file.sync(path, T0, TYPES)["created"] == 1
    assert dispatch.by_name("nightly").workflow["steps"][1]["depends_on"] == ["a"]
