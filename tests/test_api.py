"""The full job API through HTTP against real workers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from openapi_spec_validator import validate

from tests.stack import alive, pids_of, wait_until


def test_openapi_document_is_valid_and_documents_every_endpoint(stack):
    spec = stack.http.get(stack.url + "/openapi.json").json()
    validate(spec)
    paths = spec["paths"]
    for path in [
        "/api/worker/jobs",
        "/api/worker/jobs/{job_id}",
        "/api/worker/jobs/{job_id}/logs",
        "/api/worker/status",
        "/api/worker/types",
        "/api/worker/queue",
        "/api/worker/queue/flush",
        "/healthz",
        "/readyz",
    ]:
        assert path in paths, path
    assert "409" in paths["/api/worker/jobs/{job_id}"]["delete"]["responses"]
    assert stack.http.get(stack.url + "/docs").status_code == 200


def test_list_filters_and_pages_newest_first(stack):
    project = f"list-{time.monotonic_ns()}"
    ids = [stack.submit("add", {"x": i, "y": 0}, project=project)["id"] for i in range(5)]
    ids.append(stack.submit("helloworld", project=project)["id"])
    for job_id in ids:
        stack.wait_for(job_id)
    page = stack.http.get(stack.api("/jobs"), params={"project": project, "limit": 4}).json()
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:4]
    rest = stack.http.get(
        stack.api("/jobs"), params={"project": project, "limit": 4, "cursor": page["next_cursor"]}
    ).json()
    assert [j["id"] for j in rest["jobs"]] == ids[::-1][4:]
    assert rest["next_cursor"] is None
    only_add = stack.http.get(stack.api("/jobs"), params={"project": project, "type": "add"}).json()["jobs"]
    assert len(only_add) == 5
    statuses = stack.http.get(
        stack.api("/jobs"), params=[("project", project), ("status", "completed"), ("status", "failed")]
    ).json()["jobs"]
    assert len(statuses) == 6
    created = page["jobs"][-1]["created_at"]
    newer = stack.http.get(stack.api("/jobs"), params={"project": project, "created_after": created}).json()["jobs"]
    assert len(newer) == 4
    older = stack.http.get(stack.api("/jobs"), params={"project": project, "created_before": created}).json()["jobs"]
    assert len(older) == 2


@pytest.mark.parametrize(
    "params", [{"status": "sleeping"}, {"limit": 0}, {"cursor": "!!"}, {"created_after": "yesterday"}]
)
def test_list_rejects_bad_filters(stack, params):
    response = stack.http.get(stack.api("/jobs"), params=params)
    assert response.status_code == 422, response.text
    assert response.json()["errors"]["query"]


def test_cancel_running_job_kills_its_process_group_within_5_s(stack):
    job = stack.submit("sleeper", {"seconds": 60, "ignore_term": True})
    stack.wait_for(job["id"], {"running"})
    pids = pids_of(stack, job["id"])
    started = time.monotonic()
    response = stack.http.delete(stack.api(f"/jobs/{job['id']}"))
    assert response.status_code == 202 and response.json()["cancel_requested"]
    done = stack.wait_for(job["id"], timeout=5)
    assert done["status"] == "cancelled"
    assert time.monotonic() - started < 5
    wait_until(lambda: not alive(pids["script"]) and not alive(pids["grandchild"]), 2, "the job's processes to be gone")
    again = stack.http.delete(stack.api(f"/jobs/{job['id']}"))
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_cancel_queued_job_that_already_reached_a_worker_never_starts(stack):
    # Both pool slots busy; with prefetch the next message waits inside the worker.
    blockers = [stack.submit("sleeper", {"seconds": 60}) for _ in range(2)]
    for blocker in blockers:
        stack.wait_for(blocker["id"], {"running"})
    victim = stack.submit("helloworld")
    response = stack.http.delete(stack.api(f"/jobs/{victim['id']}"))
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    for blocker in blockers:
        stack.http.delete(stack.api(f"/jobs/{blocker['id']}"))
        stack.wait_for(blocker["id"])
    after = stack.wait_for(stack.submit("helloworld")["id"])
    assert after["status"] == "completed"  # the worker has moved past the victim's message
    victim = stack.job(victim["id"])
    assert victim["status"] == "cancelled" and victim["started_at"] is None and victim["attempts"] == 0


def test_cancel_finished_job_is_409_and_unknown_404(stack):
    done = stack.wait_for(stack.submit("helloworld")["id"])
    response = stack.http.delete(stack.api(f"/jobs/{done['id']}"))
    assert response.status_code == 409
    assert "completed" in response.json()["message"]
    assert stack.http.delete(stack.api("/jobs/nope")).status_code == 404


def test_logs_can_be_tailed_by_offset(stack):
    job = stack.submit("fakejob", {"delay_seconds": 0})
    stack.wait_for(job["id"])
    first = stack.http.get(stack.api(f"/jobs/{job['id']}/logs"), params={"limit": 5}).json()
    assert first["data"] == "Fake " and first["next_offset"] == 5 and not first["complete"]
    rest = stack.http.get(stack.api(f"/jobs/{job['id']}/logs"), params={"offset": first["next_offset"]}).json()
    assert rest["data"] == "job completed\n" and rest["complete"]
    assert rest["size"] == stack.job(job["id"])["log_bytes"]


def test_progress_and_etag_follow_a_running_job(stack):
    job = stack.submit("stepper")
    seen = wait_until(lambda: (j := stack.job(job["id"]))["progress"] == 0.5 and j, 10, "progress")
    assert seen["status"] == "running" and seen["progress_message"] == "half way"
    first = stack.http.get(stack.api(f"/jobs/{job['id']}"))
    unchanged = stack.http.get(stack.api(f"/jobs/{job['id']}"), headers={"If-None-Match": first.headers["ETag"]})
    assert unchanged.status_code in (200, 304)  # 200 only if the log counter moved in between
    done = stack.wait_for(job["id"])
    response = stack.http.get(stack.api(f"/jobs/{job['id']}"), headers={"If-None-Match": first.headers["ETag"]})
    assert response.status_code == 200 and response.headers["ETag"] != first.headers["ETag"]
    assert done["progress"] == 1.0 and done["progress_message"] == "done"


def test_status_shows_workers_queues_and_counts(stack):
    status = wait_until(lambda: (s := stack.http.get(stack.api("/status")).json())["workers"] and s, 10, "a worker")
    worker = status["workers"][0]
    assert worker["name"].startswith("w1@") and worker["queues"] == ["default"]
    assert "default" in status["queues"] and set(status["jobs"]) >= {"queued", "running", "completed"}
    assert status["version"]


def test_types_describe_schema_and_limits(stack):
    types = {t["name"]: t for t in stack.http.get(stack.api("/types")).json()}
    assert types["fakejob"]["params_schema"]["properties"]["delay_seconds"]["default"] == 5
    assert types["add"]["soft_time_limit"] == 10 and types["add"]["retry"]["max_retries"] == 0
    assert "python-script" in types


def test_flush_cancels_waiting_jobs_of_one_project(stack):
    blockers = [stack.submit("sleeper", {"seconds": 60}) for _ in range(2)]
    for blocker in blockers:
        stack.wait_for(blocker["id"], {"running"})
    waiting = [stack.submit("helloworld", project="flushme") for _ in range(3)]
    other = stack.submit("helloworld", project="keepme")
    queue = stack.http.get(stack.api("/queue")).json()
    assert {j["id"] for j in waiting} <= {j["id"] for j in queue["pending"]}
    response = stack.http.post(stack.api("/queue/flush"), json={"project": ["flushme"]})
    assert response.json() == {"cancelled": 3}
    for blocker in blockers:
        stack.http.delete(stack.api(f"/jobs/{blocker['id']}"))
    assert stack.wait_for(other["id"])["status"] == "completed"
    assert all(stack.job(j["id"])["status"] == "cancelled" for j in waiting)


@pytest.fixture(scope="module")
def scripts(stack):
    folder = stack.data_dir / "scripts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "echo.py").write_text(
        "import json, os, sys\njson.dump(sys.argv[1:], open(os.environ['ROBOTNI_RESULT'], 'w'))\n"
    )
    (folder / "sub").mkdir(exist_ok=True)
    outside = stack.base / "outside.py"
    outside.write_text("print('escaped')\n")
    (folder / "link.py").symlink_to(outside)
    (folder / "linkdir").symlink_to(stack.base)
    return folder


def test_python_script_runs_a_script_from_the_scripts_folder(stack, scripts):
    job = stack.submit("python-script", {"script": "echo.py", "args": ["a b", "$(id)"]})
    assert stack.wait_for(job["id"])["result"] == ["a b", "$(id)"]


@pytest.mark.parametrize(
    "script", ["../outside.py", "/etc/passwd", "link.py", "linkdir/outside.py", "missing.py", "sub", "a\0b", "x" * 2000]
)
def test_python_script_containment(stack, scripts, script):
    response = stack.http.post(stack.api("/jobs"), json={"type": "python-script", "params": {"script": script}})
    assert response.status_code == 422, response.text
    assert "params" in response.json()["errors"]["json"]


@pytest.mark.parametrize("venv", ["../venvs", "/usr", "nope", "a/b", ""])
def test_venv_must_be_a_known_name(stack, venv):
    response = stack.http.post(stack.api("/jobs"), json={"type": "helloworld", "venv": venv})
    assert response.status_code == 422, response.text


def test_venv_by_name_runs_with_its_interpreter(stack, tmp_path_factory):
    import subprocess
    import sys

    venvs = stack.data_dir / "venvs"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venvs / "plain")], check=True)
    (stack.data_dir / "scripts").mkdir(parents=True, exist_ok=True)
    (stack.data_dir / "scripts" / "where.py").write_text(
        "import json, os, sys\njson.dump(sys.prefix, open(os.environ['ROBOTNI_RESULT'], 'w'))\n"
    )
    job = stack.submit("python-script", {"script": "where.py"}, venv="plain")
    assert stack.wait_for(job["id"])["result"] == str(venvs / "plain")


def test_bad_requests_get_clear_json_errors(stack):
    deep = {"a": None}
    for _ in range(40):
        deep = {"a": deep}
    response = stack.http.post(stack.api("/jobs"), json={"type": "helloworld", "params": deep})
    assert response.status_code == 422 and "deeper" in response.json()["message"]
    big = {"blob": "x" * 300_000}
    response = stack.http.post(stack.api("/jobs"), json={"type": "helloworld", "params": big})
    assert response.status_code == 422 and "larger" in response.json()["message"]
    response = stack.http.post(
        stack.api("/jobs"), data=b"{" + b'"a":' * 10 + b"1}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    response = stack.http.post(stack.api("/jobs"), data="[" * 100_000, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.text
    response = stack.http.post(
        stack.api("/jobs"), data=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413 and response.json()["code"] == 413
    response = stack.http.put(stack.api("/jobs"), json={})
    assert response.status_code == 405 and response.json()["code"] == 405


def test_health_probes(stack):
    assert stack.http.get(stack.url + "/healthz").json() == {"status": "ok"}
    assert stack.http.get(stack.url + "/readyz").status_code == 200


def test_timeout_ends_timed_out_and_kills_the_group(stack):
    wtypes = stack.workers_dir
    assert (wtypes / "sleeper.py").exists()
    job = stack.submit("shortsleeper")
    pids = pids_of(stack, job["id"])
    done = stack.wait_for(job["id"], timeout=15)
    assert done["status"] == "timed_out" and "time limit" in done["error"]
    wait_until(lambda: not alive(pids["script"]) and not alive(pids["grandchild"]), 3, "the job's processes to be gone")
    assert signal.SIGKILL


def test_the_command_line_submits_a_job_and_waits_for_its_end(stack):
    env = {**stack.env, "ROBOTNI_API_URL": stack.url}
    cli = [sys.executable, "-c", "from robotni.cli import main; main()", "submit"]
    added = subprocess.run([*cli, "add", "-p", "x=1", "-p", "y=2.5", "--wait"], env=env, capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["result"] == {"sum": 3.5}
    failed = subprocess.run([*cli, "failer", "-p", "code=4", "--wait"], env=env, capture_output=True, text=True)
    assert failed.returncode == 1  # it waited for the end: not completed
    assert json.loads(failed.stdout)["status"] == "failed"
