"""Schedules and deferred jobs through HTTP, against real workers; real `celery beat` for dispatch."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.stack import TERMINAL, Stack, wait_until


def create(stack, expect: int = 201, **fields) -> dict:
    body = {"name": f"s-{datetime.now().timestamp()}", "type": "helloworld", **fields}
    if "cron" not in fields:
        body.setdefault("interval_seconds", 3600)
    response = stack.http.post(stack.api("/schedules"), json=body)
    assert response.status_code == expect, response.text
    return response.json()


def runs(stack, schedule_id: str) -> list[dict]:
    response = stack.http.get(stack.api(f"/schedules/{schedule_id}/runs"))
    assert response.status_code == 200, response.text
    return response.json()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- the resources (no beat needed) -------------------------------------------------------------------------


def test_schedule_resources_create_list_get_update_switch_delete(stack):
    made = create(stack, name="morning", cron="0 7 * * *", timezone="Asia/Jakarta", project="reports")
    assert made["source"] == "api" and made["enabled"] and made["interval_seconds"] is None
    next_run = when(made["next_run_at"])
    assert next_run.astimezone(UTC).hour == 0 and next_run.minute == 0  # 07:00 in Jakarta
    one = stack.http.get(stack.api(f"/schedules/{made['id']}"))
    assert one.status_code == 200 and one.json()["name"] == "morning"
    listed = stack.http.get(stack.api("/schedules"), params={"project": "reports"}).json()
    assert [s["id"] for s in listed] == [made["id"]]

    before = datetime.now(UTC)
    patched = stack.http.patch(stack.api(f"/schedules/{made['id']}"), json={"interval_seconds": 90})
    assert patched.status_code == 200, patched.text
    assert patched.json()["cron"] is None and patched.json()["interval_seconds"] == 90
    interval = timedelta(seconds=90)  # counted from the change, whatever the cron's next run was
    assert before + interval <= when(patched.json()["next_run_at"]) <= datetime.now(UTC) + interval

    off = stack.http.post(stack.api(f"/schedules/{made['id']}/disable")).json()
    assert not off["enabled"] and off["next_run_at"] is None
    on = stack.http.post(stack.api(f"/schedules/{made['id']}/enable")).json()
    assert on["enabled"] and on["next_run_at"] is not None
    assert runs(stack, made["id"]) == []

    assert stack.http.delete(stack.api(f"/schedules/{made['id']}")).status_code == 204
    assert stack.http.get(stack.api(f"/schedules/{made['id']}")).status_code == 404
    assert stack.http.delete(stack.api(f"/schedules/{made['id']}")).status_code == 404
    assert stack.http.get(stack.api(f"/schedules/{made['id']}/runs")).status_code == 404


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cron": "0 7 * *", "interval_seconds": None}, "cron"),
        ({"cron": "every morning", "interval_seconds": None}, "cron"),
        ({"cron": "0 7 * * *", "timezone": "Asia/Atlantis", "interval_seconds": None}, "timezone"),
        ({"cron": "0 7 * * *", "interval_seconds": 60}, "cron"),  # both
        ({"interval_seconds": None}, "cron"),  # neither
        ({"interval_seconds": 0}, "interval_seconds"),
        ({"interval_seconds": "soon"}, "interval_seconds"),
        ({"type": "add", "params": {"x": "one", "y": 2}}, "params"),
        ({"type": "nope"}, "type"),
        ({"name": "no spaces allowed"}, "name"),
        ({"venv": "../escape"}, "venv"),
    ],
)
def test_bad_schedule_is_422_naming_the_field(stack, fields, field):
    refused = create(stack, expect=422, **fields)
    assert field in refused["errors"]["json"], refused


def test_duplicate_name_is_409_and_a_bad_update_changes_nothing(stack):
    first = create(stack, name="unique-name")
    create(stack, expect=409, name="unique-name")
    url = stack.api(f"/schedules/{first['id']}")
    assert stack.http.patch(url, json={"cron": "not cron"}).status_code == 422
    assert stack.http.patch(url, json={"timezone": "Nowhere/Land", "cron": "0 7 * * *"}).status_code == 422
    assert stack.http.patch(url, json={"params": {"unexpected": True}, "type": "add"}).status_code == 422
    other = create(stack, name="other-name")
    assert stack.http.patch(stack.api(f"/schedules/{other['id']}"), json={"name": "unique-name"}).status_code == 409
    assert stack.http.get(url).json() == first


def test_openapi_documents_the_schedule_resources(stack):
    paths = stack.http.get(stack.url + "/openapi.json").json()["paths"]
    for path in ["/schedules", "/schedules/{schedule_id}", "/schedules/{schedule_id}/runs"]:
        assert f"/api/worker{path}" in paths
    assert {"post"} <= set(paths["/api/worker/schedules/{schedule_id}/enable"])


# --- deferred jobs -------------------------------------------------------------------------------------------


def test_countdown_job_stays_scheduled_then_completes(stack):
    job = stack.submit("helloworld", countdown=2)
    assert job["status"] == "scheduled"
    due = when(job["run_at"])
    assert timedelta(seconds=1.5) < due - when(job["created_at"]) <= timedelta(seconds=2.5)
    assert stack.job(job["id"])["status"] == "scheduled"
    done = stack.wait_for(job["id"], timeout=30)
    assert done["status"] == "completed", done
    assert when(done["started_at"]) >= due


def test_deferred_job_cancelled_before_its_time_never_runs(stack):
    cancelled = stack.submit("helloworld", countdown=2)
    control = stack.submit("helloworld", countdown=2)  # due at the same time: when it has run, so would the other
    response = stack.http.delete(stack.api(f"/jobs/{cancelled['id']}"))
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert stack.wait_for(control["id"], timeout=30)["status"] == "completed"
    after = stack.job(cancelled["id"])
    assert after["status"] == "cancelled" and after["attempts"] == 0 and after["started_at"] is None


def test_run_at_in_the_future_or_past_and_bad_start_times(stack):
    job = stack.submit("helloworld", run_at="2035-06-01T09:30:00+07:00")
    assert job["status"] == "scheduled" and job["run_at"] == "2035-06-01T02:30:00+00:00"
    naive = stack.submit("helloworld", run_at="2035-06-01T09:30:00")  # no offset: UTC
    assert naive["run_at"] == "2035-06-01T09:30:00+00:00"
    assert stack.http.delete(stack.api(f"/jobs/{naive['id']}")).status_code == 200
    assert stack.http.delete(stack.api(f"/jobs/{job['id']}")).status_code == 200
    for start in ({"run_at": "2001-01-01T00:00:00Z"}, {"countdown": 0}, {"countdown": -5}):
        now = stack.submit("helloworld", **start)
        assert now["status"] == "queued" and now["run_at"] is None
        assert stack.wait_for(now["id"])["status"] == "completed"
    for bad in (
        {"run_at": "tomorrow"},
        {"countdown": "soon"},
        {"countdown": float("1e300")},
        {"run_at": "2030-01-01T00:00:00Z", "countdown": 5},
        {"run_at": "0001-01-01T00:00:00+01:00"},
    ):
        stack.submit("helloworld", expect=422, **bad)


# --- real celery beat ----------------------------------------------------------------------------------------

SCHEDULES_FILE = """
schedules:
  - name: nightly-from-file
    type: fakejob
    params: {delay_seconds: 0}
    cron: "0 7 * * *"
    timezone: Asia/Jakarta
"""


@pytest.fixture(scope="module")
def beat_stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("beat")
    (base / "schedules.yaml").write_text(SCHEDULES_FILE)
    running = Stack(base, {"ROBOTNI_SCHEDULES_FILE": str(base / "schedules.yaml"), "ROBOTNI_CLEANUP_SECONDS": "2"})
    try:
        running.start_web()
        running.worker = running.start_worker()
        running.start_beat()
        yield running
    finally:
        running.stop()


def test_beat_makes_interval_jobs_after_an_update_and_stops_when_disabled(beat_stack):
    stack = beat_stack
    schedule = create(stack, name="every-2s", interval_seconds=3600)
    # Changed through the API while beat runs: the next tick uses it, nothing restarts.
    patched = stack.http.patch(stack.api(f"/schedules/{schedule['id']}"), json={"interval_seconds": 2})
    assert patched.status_code == 200, patched.text

    def three_completed():
        made = runs(stack, schedule["id"])
        return len([r for r in made if r["job"]["status"] == "completed"]) >= 3 and made

    made = wait_until(three_completed, 40, "3 completed jobs from a 2 s schedule", every=0.2)
    due_times = sorted(when(r["due_at"]) for r in made)
    assert all(b - a == timedelta(seconds=2) for a, b in itertools.pairwise(due_times)), due_times
    assert all(r["job"]["type"] == "helloworld" for r in made)

    assert stack.http.post(stack.api(f"/schedules/{schedule['id']}/disable")).status_code == 200
    count = len(runs(stack, schedule["id"]))
    # Two runs of a witness schedule prove dispatch went on for more than one 2 s interval after disabling.
    witness = create(stack, name="witness", interval_seconds=2)
    wait_until(lambda: len(runs(stack, witness["id"])) >= 2, 30, "two runs of the witness schedule", every=0.2)
    assert stack.http.post(stack.api(f"/schedules/{witness['id']}/disable")).status_code == 200
    assert len(runs(stack, schedule["id"])) == count
    wait_until(lambda: all(r["job"]["status"] in TERMINAL for r in runs(stack, schedule["id"])), 30, "jobs end")
    assert stack.http.get(stack.api(f"/schedules/{schedule['id']}")).json()["next_run_at"] is None


def test_schedules_are_dispatched_while_every_pool_slot_is_busy(beat_stack):
    stack = beat_stack
    blockers = [stack.submit("sleeper", {"seconds": 60}) for _ in range(2)]  # the worker's 2 pool processes
    try:
        for blocker in blockers:
            stack.wait_for(blocker["id"], {"running"})
        # A type of another queue: its job is due now and must be made now, not when a `default` slot frees.
        schedule = create(stack, name="gpu-every-2s", type="gpujob", interval_seconds=2)
        made = wait_until(lambda: runs(stack, schedule["id"]), 30, "a job from the schedule", every=0.2)
        assert made[0]["job"]["status"] == "queued" and made[0]["job"]["queue"] == "gpu"
        stack.http.post(stack.api(f"/schedules/{schedule['id']}/disable"))
    finally:
        for blocker in blockers:
            stack.http.delete(stack.api(f"/jobs/{blocker['id']}"))
    for blocker in blockers:
        assert stack.wait_for(blocker["id"])["status"] == "cancelled"


def test_schedules_from_the_file_are_listed_with_their_source(beat_stack):
    stack = beat_stack

    def loaded():
        listed = {s["name"]: s for s in stack.http.get(stack.api("/schedules")).json()}
        return listed.get("nightly-from-file")

    nightly = wait_until(loaded, 30, "beat to load the schedules file")
    assert nightly["source"] == "file" and nightly["source_file"].endswith("schedules.yaml")
    assert nightly["timezone"] == "Asia/Jakarta" and when(nightly["next_run_at"]).astimezone(UTC).hour == 0
    url = stack.api(f"/schedules/{nightly['id']}")
    assert stack.http.patch(url, json={"interval_seconds": 5}).status_code == 409
    assert stack.http.delete(url).status_code == 409
    assert stack.http.post(url + "/disable").json()["enabled"] is False
    assert stack.http.post(url + "/enable").json()["enabled"] is True


def test_beat_runs_the_cleanup_and_its_counts_are_logged(beat_stack):
    found = wait_until(lambda: re.search(r"cleanup: removed (\{.*\})", beat_stack.worker.log()), 30, "a cleanup pass")
    assert "'jobs': 0" in found.group(1)  # nothing here is older than the 7 days of retention


def test_a_schedule_starts_a_workflow_check_then_report(beat_stack):
    stack = beat_stack
    steps = [
        {"name": "check", "type": "add", "params": {"x": 2, "y": 3}},
        {"name": "report", "type": "helloworld", "depends_on": ["check"]},
    ]
    bad = create(stack, expect=422, type=None, workflow={"name": "w", "steps": [{**steps[0], "params": {"x": "2"}}]})
    assert "step 'check'" in bad["message"] and "params" in bad["errors"]["json"]["workflow"]["steps"]["0"]
    assert create(stack, expect=422, workflow={"name": "w", "steps": steps})["errors"]["json"]["type"]  # not both
    schedule = create(
        stack, name="check-then-report", type=None, workflow={"name": "w", "steps": steps}, interval_seconds=2
    )
    assert schedule["type"] is None and schedule["workflow"]["name"] == "w"
    first = wait_until(lambda: runs(stack, schedule["id"]), 20, "the schedule's first run", every=0.2)[-1]
    workflow_id = first["job"]["workflow_id"]
    url = stack.api(f"/workflows/{workflow_id}")
    done = wait_until(lambda: (w := stack.http.get(url).json())["status"] != "running" and w, 30, "the workflow")
    assert done["status"] == "completed" and [s["name"] for s in done["steps"]] == ["check", "report"]
    assert stack.http.post(stack.api(f"/schedules/{schedule['id']}/disable")).status_code == 200
