"""GET /stats (the dashboard's figures) and GET /report through HTTP on jobs of known times, the report-daily
type, and who may read what: the figures of a token's projects, the export for a token of all projects only."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from robotni.status import JobStatus
from robotni.store.engine import make_engine
from robotni.store.models import Job, utcnow
from tests.stack import Stack

ADMIN = "admin-token-" + "a" * 20
SHOP = "shop-token-" + "s" * 20
# Seconds before now: (type, status, created, started, finished, error). Fractions keep them off bucket edges.
KNOWN = {
    "a": ("alpha", JobStatus.COMPLETED, 600.3, 590.3, 580.3, None),
    "b": ("alpha", JobStatus.COMPLETED, 300.3, 290.3, 270.3, None),
    "c": (
        "beta",
        JobStatus.FAILED,
        200.3,
        100.3,
        40.3,
        "exit code 1\nTraceback (most recent call last):\nValueError: bad 7",
    ),
    "d": ("beta", JobStatus.FAILED, 200.3, 100.3, 45.3, "exit code 1\nValueError: bad 8"),
    "e": ("beta", JobStatus.TIMED_OUT, 150.3, 140.3, 130.3, "time limit exceeded (10 s)"),
    "f": ("alpha", JobStatus.QUEUED, 150.3, None, None, None),
    "g": ("beta", JobStatus.RUNNING, 5000.3, 10.3, None, None),
    "h": ("alpha", JobStatus.CANCELLED, 500.3, None, 400.3, "cancelled before it started"),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Tokens set, the report-daily type's jobs given the admin one; jobs of known times in project `stats`."""
    base = tmp_path_factory.mktemp("stats")
    env = {"ROBOTNI_API_TOKENS": f"{ADMIN}:*;{SHOP}:shop", "ROBOTNI_JOB_API_TOKEN": ADMIN}
    stack = Stack(base, env)
    try:
        stack.start_web()
        stack.env["ROBOTNI_API_URL"] = stack.url
        stack.start_worker()
        stack.http.headers["Authorization"] = f"Bearer {ADMIN}"
        stack.now = utcnow()
        stack.known = insert_known(stack, stack.now)
        yield stack
    finally:
        stack.stop()


def insert_known(stack: Stack, now: datetime) -> dict[str, Job]:
    """Rows as the store would hold them, on a queue no worker takes (a queued one stays queued)."""

    def at(seconds: float | None) -> datetime | None:
        return None if seconds is None else now - timedelta(seconds=seconds)

    rows = {}
    for name, (type_, status, created, started, finished, error) in KNOWN.items():
        rows[name] = Job(
            id=f"known-{name}", type=type_, project="stats", queue="statsq", params={}, status=status,
            created_at=at(created), updated_at=now, started_at=at(started), finished_at=at(finished), error=error,
            attempts=0 if started is None else 1, worker=None if started is None else "ghost@host",
            lease_expires_at=now + timedelta(days=1) if status == JobStatus.RUNNING else None,
        )  # fmt: skip
    other = Job(id="other", type="alpha", project="shop", queue="statsq", params={}, status=JobStatus.COMPLETED,
                created_at=at(100), updated_at=now, started_at=at(90), finished_at=at(80), attempts=1, worker="w")  # fmt: skip
    engine = make_engine(f"sqlite:///{stack.data_dir / 'robotni.db'}")
    with Session(engine, expire_on_commit=False) as session, session.begin():
        session.add_all([*rows.values(), other])
    engine.dispose()
    return rows


def get(stack: Stack, path: str, token: str = ADMIN, **params) -> dict:
    response = stack.http.get(stack.api(path), params=params, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None)


def test_stats_count_ends_per_bucket_and_rebuild_the_queue_depth(stack):
    found = get(stack, "/stats", window=3600, project="stats")
    assert found["window"] == 3600 and found["bucket_seconds"] == 60 and len(found["finished"]) == 60
    starts = [moment(row["t"]) for row in found["finished"]]
    assert all(b - a == timedelta(seconds=60) for a, b in itertools.pairwise(starts))
    assert starts[0].second == 0 and starts[-1] <= moment(found["now"]) < starts[-1] + timedelta(seconds=60)

    expected = {
        row["t"]: {s: 0 for s in ("completed", "failed", "cancelled", "timed_out")} for row in found["finished"]
    }
    for job in stack.known.values():
        if job.finished_at is not None:
            start = job.finished_at.replace(second=0, microsecond=0, tzinfo=UTC).isoformat()
            expected[start][job.status.value] += 1
    assert {row["t"]: {k: v for k, v in row.items() if k != "t"} for row in found["finished"]} == expected

    def waiting_at(t: datetime) -> int:
        left = [(job.created_at, job.started_at or job.finished_at) for job in stack.known.values()]
        return sum(created <= t and (gone is None or gone > t) for created, gone in left)

    depth = [(row["t"], row["waiting"]) for row in found["queue_depth"]]
    assert depth == [(t, waiting_at(moment(t))) for t, _ in depth]
    # A minute's end falls while c and d wait (100 s), with g waiting all along; more where f and e also wait.
    assert max(waiting for _, waiting in depth) >= 3
    assert moment(depth[-1][0]) == moment(found["now"])

    assert found["durations"] == [
        {"type": "alpha", "count": 2, "p50_seconds": pytest.approx(15, abs=0.01), "p95_seconds": pytest.approx(19.5, abs=0.01)},
        {"type": "beta", "count": 3, "p50_seconds": pytest.approx(55, abs=0.01), "p95_seconds": pytest.approx(59.5, abs=0.01)},
    ]  # fmt: skip
    assert {"queue": "statsq", "queued": 1, "running": 1} in found["queues"]
    assert {row["queue"] for row in found["queues"]} >= {"default", "statsq"}  # every queue, idle ones too


def test_report_figures_of_the_last_hours(stack):
    found = get(stack, "/report", hours=24, project="stats")
    assert found["window_hours"] == 24
    assert found["by_type_status"] == {
        "alpha": {"completed": 2, "queued": 1, "cancelled": 1},
        "beta": {"failed": 2, "timed_out": 1, "running": 1},
    }
    assert [(f["error"], f["count"], f["types"], f["last_job_id"]) for f in found["top_failures"]] == [
        ("ValueError: bad <n>", 2, ["beta"], "known-c"),
        ("time limit exceeded (<n> s)", 1, ["beta"], "known-e"),
    ]
    waits = {(w["type"], w["queue"]): w for w in found["queue_waits"]}
    assert waits["alpha", "statsq"]["count"] == 2 and waits["alpha", "statsq"]["p50_seconds"] == pytest.approx(
        10, abs=0.01
    )
    assert waits["beta", "statsq"]["count"] == 4 and waits["beta", "statsq"]["p95_seconds"] == pytest.approx(
        4256.5, abs=0.01
    )
    assert [d["type"] for d in found["durations"]] == ["alpha", "beta"]


def test_figures_stay_within_the_token_projects(stack):
    assert get(stack, "/stats", token=SHOP, project="stats")["durations"] == []
    mine = get(stack, "/report", token=SHOP)
    assert mine["by_type_status"] == {"alpha": {"completed": 1}} and mine["top_failures"] == []
    assert get(stack, "/report")["by_type_status"]["alpha"]["completed"] == 3  # the admin token: every project
    for bad in ({"window": 59}, {"window": 86401}, {"window": "soon"}):
        response = stack.http.get(stack.api("/stats"), params=bad)
        assert response.status_code == 422 and "window" in response.json()["errors"]["query"], response.text


def test_export_streams_json_lines_for_a_token_of_all_projects_only(stack):
    refused = stack.http.get(stack.api("/export"), headers={"Authorization": f"Bearer {SHOP}"})
    assert refused.status_code == 403 and "all projects" in refused.json()["message"]
    response = stack.http.get(stack.api("/export"), params={"project": "stats", "logs": "true"}, stream=True)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.iter_lines()]
    assert lines[0]["format"] == "robotni-export" and lines[0]["scope"]["project"] == "stats"
    assert sorted(line["id"] for line in lines if line.get("kind") == "job") == sorted(f"known-{n}" for n in KNOWN)
    assert lines[-1] == {"kind": "end", "counts": {**lines[-1]["counts"], "job": len(KNOWN)}}


def test_report_daily_job_reads_the_report_with_its_token_and_logs_a_table(stack):
    job = stack.wait_for(stack.submit("report-daily", {"hours": 2})["id"], timeout=60)
    assert job["status"] == "completed", job
    assert job["result"]["window_hours"] == 2
    assert job["result"]["top_failures"][0]["error"] == "ValueError: bad <n>"
    log = stack.http.get(stack.api(f"/jobs/{job['id']}/logs")).json()["data"]
    assert "Most repeated failures" in log and "ValueError: bad <n>" in log
    header = next(line for line in log.splitlines() if line.strip().startswith("type") and "p95" in line)
    assert header.split() == ["type", "jobs", "p50", "p95"]
    # Any other type's job gets nothing of the kind in its environment.
    probe = stack.wait_for(stack.submit("prober")["id"])
    assert probe["status"] == "completed", probe
    assert not {"ROBOTNI_API_TOKEN", "ROBOTNI_API_URL", "ROBOTNI_DATA_FOLDER"} & set(probe["result"]["env"])
