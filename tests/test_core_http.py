"""End to end: HTTP → job row → filesystem broker → real celery worker → script → row."""

from __future__ import annotations

import pytest


def test_fakejob_completes_with_its_wait(stack):
    job = stack.submit("fakejob", {"delay_seconds": 1.5})
    assert job["status"] == "queued"
    done = stack.wait_for(job["id"])
    assert done["status"] == "completed", done
    assert 1 <= done["result"]["waited"] <= 1.5
    assert done["attempts"] == 1
    assert done["progress"] == 1.0
    assert done["worker"].startswith("w1@")
    assert done["started_at"] >= done["created_at"] and done["finished_at"] >= done["started_at"]


def test_add_and_helloworld(stack):
    add = stack.submit("add", {"x": 2, "y": 40})
    hello = stack.submit("helloworld")
    assert stack.wait_for(add["id"])["result"] == {"sum": 42}
    done = stack.wait_for(hello["id"])
    assert done["status"] == "completed"
    assert done["log_bytes"] == len("Hello, World!\n")


def test_zero_delay_is_a_no_op(stack):
    done = stack.wait_for(stack.submit("fakejob", {"delay_seconds": 0})["id"])
    assert done["result"] == {"waited": 0}


def test_location_header_points_at_the_job(stack):
    response = stack.http.post(stack.api("/jobs"), json={"type": "helloworld", "project": "site-a"})
    assert response.status_code == 202
    location = response.headers["Location"]
    assert location.endswith(response.json()["id"])
    assert response.json()["job_id"] == response.json()["id"]  # clients of the first API read job_id
    assert stack.http.get(stack.url + location).json()["project"] == "site-a"


def test_every_route_answers_with_a_trailing_slash_too(stack):
    response = stack.http.post(stack.api("/jobs/"), json={"type": "helloworld", "project": "slash"})
    assert response.status_code == 202, response.text  # not a redirect that drops the body
    job_id = response.json()["id"]
    assert stack.http.get(stack.api(f"/jobs/{job_id}/")).json()["id"] == job_id
    assert [j["id"] for j in stack.http.get(stack.api("/jobs/"), params={"project": "slash"}).json()["jobs"]] == [
        job_id
    ]
    assert stack.http.get(stack.api("/types/")).status_code == 200
    assert stack.http.get(stack.url + "/healthz/").status_code == 200


def test_failure_records_exit_code_and_stderr(stack):
    done = stack.wait_for(stack.submit("failer", {"code": 3})["id"])
    assert done["status"] == "failed"
    assert done["exit_code"] == 3
    assert "about to fail" in done["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "nope"}, "type"),
        ({"type": "add", "params": {"x": 1}}, "params"),
        ({"type": "fakejob", "params": {"delay_seconds": "soon"}}, "params"),
        ({"params": {}}, "type"),
        ({"type": "add", "params": [1, 2]}, "params"),
        ({"type": "helloworld", "project": "../etc"}, "project"),
    ],
)
def test_bad_submissions_get_422_naming_the_field(stack, body, field):
    response = stack.http.post(stack.api("/jobs"), json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["errors"]["json"]


def test_malformed_json_is_400_and_wrong_type_415(stack):
    response = stack.http.post(stack.api("/jobs"), data="{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == 400
    response = stack.http.post(stack.api("/jobs"), data="type=add")
    assert response.status_code == 415
    assert "application/json" in response.json()["message"]


def test_unknown_job_is_404(stack):
    response = stack.http.get(stack.api("/jobs/00000000-0000-0000-0000-000000000000"))
    assert response.status_code == 404
    assert "no job" in response.json()["message"]


def test_etag_gives_304_until_the_job_changes(stack):
    job = stack.submit("fakejob", {"delay_seconds": 0})
    done = stack.wait_for(job["id"])
    first = stack.http.get(stack.api(f"/jobs/{job['id']}"))
    again = stack.http.get(stack.api(f"/jobs/{job['id']}"), headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert done["status"] == "completed"
