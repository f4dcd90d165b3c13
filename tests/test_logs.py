"""Structured logs: JSON lines with job fields from the worker and request ids from the API; text at a terminal."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import subprocess
import sys
import threading
from types import SimpleNamespace

from robotni import logsetup
from tests.stack import ROOT, wait_until

JOB_KEYS = ("job_id", "type", "project", "attempt")


def lines_about(text: str, job_id: str) -> list[dict]:
    """Every line that names the job, parsed: each must be a JSON object."""
    found = []
    for line in text.splitlines():
        if job_id in line:
            entry = json.loads(line)  # fails the test on a line about the job that is not JSON
            assert isinstance(entry, dict), line
            found.append(entry)
    return found


def test_worker_and_api_lines_about_a_job_carry_its_fields(stack):
    response = stack.http.post(
        stack.api("/jobs"), json={"type": "flaky", "project": "logbook"}, headers={"X-Request-ID": "client-req-42"}
    )
    assert response.status_code == 202, response.text
    assert response.headers["X-Request-ID"] == "client-req-42"
    job = response.json()
    assert stack.wait_for(job["id"])["status"] == "completed"  # on its third attempt
    worker = next(p for p in stack.processes if p.name.startswith("worker"))
    web = next(p for p in stack.processes if p.name == "web")
    done = f"job {job['id']}: attempt 3 ended"
    wait_until(lambda: done in worker.log(), 10, "the worker's line for the finished task")

    worker_lines = lines_about(worker.log(), job["id"])
    assert len(worker_lines) >= 6  # started and ended, for each of three attempts
    # Celery's own received/succeeded lines would repeat Robotni's: at INFO they are not written.
    assert not [e for e in worker_lines if e["logger"] in ("celery.worker.strategy", "celery.app.trace")]
    for entry in worker_lines:
        assert entry["job_id"] == job["id"], entry
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
        assert (entry["type"], entry["project"]) == ("flaky", "logbook"), entry
        said = re.search(r"attempt (\d+)", entry["message"])
        assert entry["attempt"] == (int(said.group(1)) if said else entry["attempt"]) and entry["attempt"] in (1, 2, 3)
    assert {e["attempt"] for e in worker_lines if "attempt" in e} == {1, 2, 3}

    web_text = web.log()
    for line in web_text.splitlines():  # gunicorn's own lines included: the API writes JSON only
        if line.strip():
            json.loads(line)
    api_lines = lines_about(web_text, job["id"])
    assert api_lines
    for entry in api_lines:
        assert all(key in entry for key in (*JOB_KEYS, "request_id")), entry
        assert (entry["job_id"], entry["type"], entry["project"]) == (job["id"], "flaky", "logbook")
    posted = [e for e in api_lines if e["logger"] == "robotni.requests" and e["method"] == "POST"]
    assert [(e["request_id"], e["http_status"], e["route"]) for e in posted] == [
        ("client-req-42", 202, "/api/worker/jobs")
    ]
    requests_lines = [json.loads(line) for line in web_text.splitlines() if '"robotni.requests"' in line]
    assert all(re.fullmatch(r"[0-9a-f]{32}|client-req-42", e["request_id"]) for e in requests_lines)


def test_a_request_id_that_is_not_plain_is_replaced(stack):
    for given in ("has spaces in it", "x" * 200, 'quote"and\\slash'):
        response = stack.http.get(stack.url + "/healthz", headers={"X-Request-ID": given})
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), given
    assert stack.http.get(stack.url + "/healthz").headers["X-Request-ID"] != ""


SCRIPT = """
import logging
from types import SimpleNamespace
from robotni import logsetup
logsetup.configure()
logsetup.bind_job(SimpleNamespace(id="j-1", type="add", project="p", attempts=2))
logging.getLogger("robotni.test").info("hello")
"""


def run_logging(log_format: str | None, tty: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTNI_")}
    env["PYTHONPATH"] = str(ROOT)
    if log_format is not None:
        env["ROBOTNI_LOG_FORMAT"] = log_format
    if not tty:
        return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, stderr=follower, stdout=subprocess.PIPE, timeout=60
        )
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed: everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        return subprocess.CompletedProcess(done.args, done.returncode, "", b"".join(chunks).decode())
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)


def test_text_at_a_terminal_json_elsewhere_unless_chosen():
    at_terminal = run_logging(None, tty=True).stderr.strip()
    assert at_terminal.endswith("INFO robotni.test [job_id=j-1 type=add project=p attempt=2] hello"), at_terminal
    piped = json.loads(run_logging(None, tty=False).stderr)
    assert (piped["message"], piped["job_id"], piped["type"], piped["project"], piped["attempt"]) == (
        "hello",
        "j-1",
        "add",
        "p",
        2,
    )
    assert json.loads(run_logging("json", tty=True).stderr)["message"] == "hello"
    assert run_logging("text", tty=False).stderr.strip().endswith("attempt=2] hello")
    refused = run_logging("yaml", tty=False)
    assert refused.returncode != 0 and "ROBOTNI_LOG_FORMAT='yaml'" in refused.stderr


def _as_the_lease_keeper_writes(logger: logging.Logger, job: SimpleNamespace) -> None:
    """In a thread of its own (contextvars do not follow a new thread), about one of its jobs."""
    with logsetup.about_job(job):
        logger.warning("from the lease thread")


def test_context_comes_from_the_task_the_lease_thread_and_extra():
    stream = io.StringIO()
    handler = logsetup.style(logging.StreamHandler(stream))
    logger = logging.getLogger("robotni.test.context")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    job = SimpleNamespace(id="j-7", type="stepper", project="q", attempts=3)
    try:
        logger.info("no context")
        logsetup.bind_job(job)
        logger.info("bound")
        logsetup.clear()
        keeper = threading.Thread(target=_as_the_lease_keeper_writes, args=(logger, job))
        keeper.start()
        keeper.join()
        logger.info("extra", extra=logsetup.job_fields(job))
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logsetup.clear()
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["message"] for e in entries] == ["no context", "bound", "from the lease thread", "extra", "failed"]
    assert "job_id" not in entries[0]
    for entry in entries[1:4]:
        assert {k: entry[k] for k in JOB_KEYS} == {"job_id": "j-7", "type": "stepper", "project": "q", "attempt": 3}
    assert "job_id" not in entries[4] and "ValueError: boom" in entries[4]["exception"]
    assert entries[0]["time"].endswith("Z") and entries[0]["level"] == "INFO"
