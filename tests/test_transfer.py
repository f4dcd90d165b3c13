"""Export and import: the embedded store moved into a fresh PostgreSQL database with the `robotni` command, as
docs/export.md tells an operator, then the same API on PostgreSQL; refused files; the backup-export type."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from robotni.status import JobStatus
from robotni.store import claims, creation, dependencies, engine, jobs
from robotni.store.engine import engine as store_engine
from robotni.store.models import Base, Dependency, Job, LogChunk, Schedule, WebhookSubscription, Workflow, utcnow
from robotni.transfer import importer
from robotni.transfer.checks import ImportRefused, check
from robotni.transfer.export import Scope, lines
from robotni.transfer.records import KINDS
from robotni.worktypes.registry import load_registry
from tests.backends import postgres_database
from tests.stack import ROOT, Stack, wait_until

WEBHOOK = {"url": "http://127.0.0.1:9/hook", "events": ["job.completed"], "projects": ["shop"]}


def robotni(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The `robotni` command in a process of its own, as a user runs it."""
    argv = [sys.executable, "-c", "from robotni.cli import main; main()", *args]
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert not check or done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """An embedded stack (web, a worker, beat) with finished jobs, output, a workflow, schedules and a webhook."""
    base = tmp_path_factory.mktemp("source")
    stack = Stack(base, {"ROBOTNI_WEBHOOK_ALLOW_PRIVATE": "1"})
    try:
        stack.start_web()
        stack.env["ROBOTNI_API_URL"] = stack.url  # for the api = true types (backup-export)
        stack.start_worker()
        beat = stack.start_beat()
        stack.submit("add", {"x": 2, "y": 3}, project="shop")
        stack.submit("helloworld", project="shop", priority="urgent")
        stack.submit("fakejob", {"delay_seconds": 0.2}, project="blog")
        stack.submit("failer", {"code": 4}, project="blog")
        stack.submit("flaky", project="shop")  # two failed attempts, then completed
        flow = stack.http.post(
            stack.api("/workflows"),
            json={
                "name": "etl",
                "project": "shop",
                "steps": [
                    {"name": "a", "type": "add", "params": {"x": 1, "y": 1}},
                    {"name": "b", "type": "helloworld", "depends_on": ["a"]},
                ],
            },
        )
        assert flow.status_code == 202, flow.text
        deferred = stack.submit("helloworld", project="shop", run_at="2999-01-01T00:00:00Z")
        assert stack.http.delete(stack.api(f"/jobs/{deferred['id']}")).status_code == 200
        often = stack.http.post(
            stack.api("/schedules"),
            json={"name": "often", "type": "add", "params": {"x": 1, "y": 2}, "interval_seconds": 1},
        ).json()
        daily = stack.http.post(
            stack.api("/schedules"),
            json={
                "name": "daily",
                "type": "helloworld",
                "project": "blog",
                "cron": "0 7 * * *",
                "timezone": "Europe/Paris",
            },
        )
        assert daily.status_code == 201, daily.text
        hook = stack.http.post(stack.api("/webhooks"), json=WEBHOOK)
        assert hook.status_code == 201, hook.text
        wait_until(lambda: len(runs(stack, often["id"])) >= 2, 30, "two runs of a 1 s schedule", every=0.2)
        assert stack.http.post(stack.api(f"/schedules/{often['id']}/disable")).status_code == 200
        beat.stop()
        stack.processes.remove(beat)
        wait_until(lambda: all_ended(stack), 60, "every job of the source stack to end", every=0.2)
        stack.webhook_id = hook.json()["id"]
        stack.workflow_id = flow.json()["id"]
        yield stack
    finally:
        stack.stop()


def runs(stack: Stack, schedule_id: str) -> list[dict]:
    return stack.http.get(stack.api(f"/schedules/{schedule_id}/runs")).json()


def listing(stack: Stack) -> list[dict]:
    response = stack.http.get(stack.api("/jobs"), params={"limit": 500})
    assert response.status_code == 200, response.text
    return response.json()["jobs"]


def all_ended(stack: Stack) -> bool:
    return all(job["status"] in ("completed", "failed", "cancelled", "timed_out") for job in listing(stack))


def served(stack: Stack) -> dict:
    """Everything a client can read about the jobs, workflows and schedules, as the API serves it."""
    found: dict = {"jobs": listing(stack), "schedules": stack.http.get(stack.api("/schedules")).json()}
    for job in found["jobs"]:
        for path in ("", "/logs", "/attempts"):
            found[f"job {job['id']}{path}"] = stack.http.get(stack.api(f"/jobs/{job['id']}{path}")).json()
    for schedule in found["schedules"]:
        found[f"runs {schedule['id']}"] = runs(stack, schedule["id"])
    found["workflow"] = stack.http.get(stack.api(f"/workflows/{stack.workflow_id}")).json()
    return found


def report(stack: Stack) -> dict:
    response = stack.http.get(stack.api("/report"), params={"hours": 1})
    assert response.status_code == 200, response.text
    return response.json()


def imported(output: str) -> dict[str, tuple[int, int]]:
    """`robotni import`'s lines: kind, added, already in the store."""
    return {kind: (int(added), int(skipped)) for kind, added, _, skipped, *_ in map(str.split, output.splitlines())}


def counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: conn.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}
    finally:
        engine.dispose()


def test_embedded_store_moves_to_postgresql_and_the_api_serves_the_same(source, exported, tmp_path):
    before = served(source)
    statuses = {job["status"] for job in before["jobs"]}
    assert {"completed", "failed", "cancelled"} <= statuses and len(before["jobs"]) >= 9
    assert any(value["data"] for key, value in before.items() if key.endswith("/logs")), "some job has output"
    assert any(len(value) > 1 for key, value in before.items() if key.endswith("/attempts")), "a retried job"
    export = exported
    postgres = postgres_database()
    target = Stack(tmp_path / "target", postgres.env)
    try:
        robotni(target.env, "db", "upgrade")
        first = imported(robotni(target.env, "import", str(export)).stdout)
        assert first["job"] == (len(before["jobs"]), 0) and first["schedule"] == (2, 0), first
        assert all(added > 0 and skipped == 0 for added, skipped in first.values()), first
        stored = counts(postgres.env["ROBOTNI_DATABASE_URL"])
        again = imported(robotni(target.env, "import", str(export)).stdout)
        assert all(added == 0 for added, _ in again.values()) and again["job"] == (0, len(before["jobs"])), again
        assert counts(postgres.env["ROBOTNI_DATABASE_URL"]) == stored

        target.start_web()
        target.workflow_id = source.workflow_id
        after = served(target)
        assert after.keys() == before.keys()
        for key, value in before.items():
            assert after[key] == value, key
        # The same figures from PostgreSQL as from SQLite (robotni/store/stats.py: one code path for both).
        figures = [
            {k: v for k, v in report(stack).items() if k not in ("since", "until")} for stack in (source, target)
        ]
        assert figures[0] == figures[1], figures
        assert sum(figures[0]["by_type_status"]["add"].values()) >= 3, figures  # not an empty report
        hook = target.http.get(target.api(f"/webhooks/{source.webhook_id}")).json()
        assert hook["url"] == WEBHOOK["url"] and hook["projects"] == ["shop"]
        assert not hook["enabled"] and "without its signing secret" in hook["disabled_reason"]
    finally:
        target.stop()
        postgres.release()


@pytest.fixture(scope="module")
def exported(source, tmp_path_factory) -> Path:
    """The source store as `robotni export --logs` writes it."""
    path = tmp_path_factory.mktemp("export") / "robotni.jsonl"
    robotni(source.env, "export", "--logs", "-o", str(path))
    return path


def edited(export: Path, path: Path, change) -> Path:
    lines = export.read_text().splitlines(keepends=True)
    path.write_text("".join(change(lines)))
    return path


def last_job_failed_to_finished(lines: list[str]) -> list[str]:
    number = max(i for i, line in enumerate(lines) if '"kind":"job"' in line)
    lines[number] = json.dumps({**json.loads(lines[number]), "status": "finished"}) + "\n"
    return lines


def newer(lines: list[str]) -> list[str]:
    return [lines[0].replace('"version":1', '"version":2'), *lines[1:]]


def test_a_cut_file_is_refused_by_the_command_and_nothing_is_imported(exported, source, tmp_path):
    bad = edited(exported, tmp_path / "cut.jsonl", lambda lines: lines[:-1])
    target = {**source.env, "ROBOTNI_DATA_DIR": str(tmp_path / "target")}
    done = robotni(target, "import", str(bad), check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    last = len(bad.read_text().splitlines())
    assert f"{bad}: line {last}: the file ends here without its end line: it was cut short" in done.stderr
    assert "nothing was imported" in done.stderr
    with sqlite3.connect(tmp_path / "target" / "robotni.db") as db:
        assert [db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in ("jobs", "schedules")] == [0, 0]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda lines: [*lines[:-2], lines[-2][:30]], r"line (\d+): not a JSON line"),
        (last_job_failed_to_finished, r"line (\d+): job [0-9a-f-]+: status: 'finished' is not a job status"),
        (
            lambda lines: ["id,name\n", "1,two\n"],
            r"line (1): not a JSON line \(cut short or edited\?\): not a Robotni export",
        ),
        (newer, r"line (1): export format version 2 is newer than this Robotni reads \(1\)"),
    ],
    ids=["cut-mid-line", "hand-edited", "foreign", "newer"],
)
def test_a_bad_file_is_refused_with_its_line_and_nothing_is_imported(exported, tmp_path, store, change, reason):
    bad = edited(exported, tmp_path / "bad.jsonl", change)
    with pytest.raises(ImportRefused) as refused:
        importer.load(store_engine(), bad)
    found = re.fullmatch(reason + ".*", str(refused.value))
    assert found, str(refused.value)
    if found.group(1) != "1":  # the line named is the wrong one, far down, past lines that were fine
        assert int(found.group(1)) > len(exported.read_text().splitlines()) // 2
    with Session(store_engine()) as session:
        assert [session.scalar(select(func.count()).select_from(m)) for m in (Job, Schedule, Workflow)] == [0, 0, 0]


def test_a_clash_with_the_store_refuses_the_whole_file(exported, tmp_path, store):
    """Found in the insert's transaction, past rows already inserted: they are rolled back with it."""

    def keyed(lines: list[str]) -> list[str]:
        number = max(i for i, line in enumerate(lines) if '"kind":"job"' in line)
        record = json.loads(lines[number])
        lines[number] = json.dumps({**record, "idempotency_key": "taken"}) + "\n"
        return lines

    bad = edited(exported, tmp_path / "keyed.jsonl", keyed)
    last = json.loads([line for line in bad.read_text().splitlines() if '"kind":"job"' in line][-1])
    other = Job(id="other", type="add", project=last["project"], queue="default", params={}, status=JobStatus.QUEUED)
    other.idempotency_key = "taken"
    eng = store_engine()
    with Session(eng) as session, session.begin():
        session.add(other)
    with pytest.raises(ImportRefused, match=r"idempotency key 'taken' .* belongs to job other") as refused:
        importer.load(eng, bad)
    assert refused.value.line > 2
    with Session(eng) as session:
        assert [session.scalar(select(func.count()).select_from(m)) for m in (Job, Schedule, Workflow)] == [1, 0, 0]


def test_backup_export_keeps_the_newest_exports_and_they_import(source, tmp_path):
    for _ in range(3):
        job = source.wait_for(source.submit("backup-export", {"keep": 2})["id"])
        assert job["status"] == "completed", job
    folder = source.data_dir / "backups"
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 2 and all(name.startswith("robotni-export-") and name.endswith(".jsonl") for name in kept)
    assert Path(job["result"]["file"]).name == kept[-1] and len(job["result"]["removed"]) == 1
    assert job["result"]["counts"]["job"] >= 9
    log = source.http.get(source.api(f"/jobs/{job['id']}/logs")).json()["data"]
    assert f"wrote {job['result']['file']}" in log
    assert check(Path(job["result"]["file"])) is True  # a whole export, with logs


def test_the_example_schedules_file_holds_a_disabled_daily_backup():
    from robotni.schedules import file

    path = ROOT / "schedules.example.yaml"
    entries = file.checked(path, file.read(path), utcnow(), load_registry(ROOT / "workers"))
    by_type = {entry["type"]: entry for entry in entries}
    assert not by_type["backup-export"]["enabled"] and by_type["backup-export"]["cron"]
    assert by_type["report-daily"]["cron"]


def test_every_table_is_exported_or_left_out_on_purpose():
    """A new table must be added to the export's kinds, or here with the reason it is not carried."""
    not_carried = {
        "workers": "heartbeats of live workers: the new store's workers write their own",
        "metric_totals": "/metrics' running totals: rebuilt from the imported jobs",
        "events": "the outbox of webhooks and streams: history already delivered",
        "webhook_deliveries": "delivery attempts of that outbox",
        "alembic_version": "the schema's revision: `robotni db upgrade` writes it",
    }
    exported = {kind.table.name for kind in KINDS.values()}
    assert exported | set(not_carried) >= set(Base.metadata.tables)
    assert not exported & set(not_carried)


def test_scope_picks_a_project_recent_jobs_schedules_only_or_output(store):
    """What each export option writes, on rows made in the store (no stack needed)."""
    now = utcnow()
    old = now - timedelta(days=10)

    def job(job_id: str, project: str, created: datetime, **values) -> Job:
        return Job(id=job_id, type="add", project=project, queue="default", params={}, status=JobStatus.COMPLETED,
                   created_at=created, updated_at=created, **values)  # fmt: skip

    with Session(store_engine()) as session, session.begin():
        session.add_all(
            [
                Workflow(id="w1", project="p1", name="etl", created_at=now),
                job("j1", "p1", old, log_bytes=5, has_dependents=True),
                job("j2", "p1", now, workflow_id="w1", step="b", on_parent_failure="cancel"),
                job("k1", "p2", now),
                Dependency(job_id="j2", parent_id="j1"),
                LogChunk(job_id="j1", start=0, data=b"hello"),
                Schedule(id="s1", name="one", type="add", project="p1", params={}, cron="0 7 * * *"),
                Schedule(id="s2", name="two", type="add", project="p2", params={}, cron="0 7 * * *"),
                *(
                    WebhookSubscription(id=f"h{i}", url="https://e.example/", events=["job.completed"], projects=p, secret="s")
                    for i, p in enumerate((["p1"], [], ["p2"]))
                ),
            ]
        )  # fmt: skip

    def written(**scope) -> dict[str, list]:
        found: dict[str, list] = {}
        for line in lines(store_engine(), Scope(**scope)):
            record = json.loads(line)
            if "kind" in record and record["kind"] != "end":
                key = record.get("id") or (record["job_id"], record.get("parent_id", record.get("start")))
                found.setdefault(record["kind"], []).append(key)
        return found

    assert written(project="p1") == {
        "schedule": ["s1"], "webhook": ["h0"], "workflow": ["w1"], "job": ["j1", "j2"], "dependency": [("j2", "j1")]
    }  # fmt: skip
    recent = written(since=now - timedelta(days=1))
    assert sorted(recent["job"]) == ["j2", "k1"] and recent["dependency"] == [("j2", "j1")]  # with its child
    assert recent["schedule"] == ["s1", "s2"] and len(recent["webhook"]) == 3
    assert written(jobs=False).keys() == {"schedule", "webhook"}
    assert written(logs=True)["output"] == [("j1", 0)] and "output" not in written()
    secretless = next(json.loads(line) for line in lines(store_engine(), Scope()) if '"kind":"webhook"' in line)
    assert "secret" not in secretless


def test_an_incremental_export_carries_the_dependencies_on_older_parents(tmp_path):
    """A full export imported, then an export --since T on top: a job created after T keeps its parent from
    before T, and the parent's end in the new store releases it. Without the older jobs, the file is refused."""
    stores = {name: engine.make_engine(f"sqlite:///{tmp_path / name}.db") for name in ("source", "target", "empty")}
    for eng in stores.values():
        engine.create_schema(eng)
    job = {"type": "add", "project": "p", "params": {}, "queue": "default", "max_attempts": 1, "venv": None}

    def export(path: Path, since: datetime | None = None) -> Path:
        path.write_text("".join(lines(stores["source"], Scope(since=since))))
        return path

    try:
        engine.use(stores["source"])
        parent, _ = creation.create(**job)
        full = export(tmp_path / "full.jsonl")
        since = utcnow()
        child, _ = creation.create(**job, depends_on=[parent.id])
        recent = export(tmp_path / "recent.jsonl", since)
        assert [json.loads(line)["id"] for line in recent.read_text().splitlines() if '"kind":"job"' in line] == [
            child.id
        ]
        engine.use(stores["target"])
        importer.load(stores["target"], full)
        assert importer.load(stores["target"], recent).added["dependency"] == 1
        assert [p.id for p in dependencies.parents_of(child.id)] == [parent.id]
        taken = claims.take(parent.id, "w", 30)
        assert taken is not None and jobs.finish(taken, JobStatus.COMPLETED) is not None
        assert jobs.get(child.id).status == JobStatus.QUEUED  # released by its parent's end, in the new store
        edge = next(n for n, line in enumerate(recent.read_text().splitlines(), 1) if '"kind":"dependency"' in line)
        with pytest.raises(ImportRefused) as refused:
            importer.load(stores["empty"], recent)
        assert (
            str(refused.value) == f"line {edge}: parent_id {parent.id}: no such row in jobs, in the file or the store"
        )
        with stores["empty"].connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Job)) == 0
    finally:
        engine.use(None)
        for eng in stores.values():
            eng.dispose()
