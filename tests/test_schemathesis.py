"""Schemathesis against the live /openapi.json, with a token: no 5xx, and every response as documented."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.stack import running_stack

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "schemathesis-token-" + "t" * 20
# What "matches the documentation" means here; schemathesis's other checks judge API design (e.g. that any
# string the schema allows as a type name is accepted), not whether the document tells the truth.
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]
# Bounded: a few examples per operation, and a time budget well under a minute on the 2-core machine.
MAX_EXAMPLES = 8
MAX_SECONDS = 40


def schemathesis_cli() -> str | None:
    found = Path(sys.executable).parent / "st"
    return str(found) if found.exists() else shutil.which("st")


@pytest.fixture(scope="module")
def schemathesis_stack(tmp_path_factory):
    env = {"ROBOTNI_API_TOKENS": f"{TOKEN}:*", "ROBOTNI_RATE_PER_SECOND": "10000", "ROBOTNI_RATE_BURST": "10000"}
    with running_stack(tmp_path_factory.mktemp("schemathesis"), env) as running:
        yield running


@pytest.mark.skipif(schemathesis_cli() is None, reason="schemathesis is in the test extra: pip install -e '.[test]'")
def test_live_api_matches_its_openapi_document(schemathesis_stack, tmp_path):
    argv = [
        schemathesis_cli(),
        "run",
        f"{schemathesis_stack.url}/openapi.json",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_SECONDS),
        "--phases",
        "examples,coverage,fuzzing",
        "--seed",
        "20261124",
        "--no-shrink",
        "--request-timeout",
        "10",
        "--report-dir",
        str(tmp_path),
        # Live event streams answer text/event-stream and end only with their job (or never, per project).
        "--exclude-operation-id",
        "streamEvents",
        "--exclude-operation-id",
        "streamJobEvents",
    ]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    # In tmp_path: schemathesis keeps a .schemathesis cache in its working directory.
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=MAX_SECONDS + 60, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-20000:]
    web = next(p for p in schemathesis_stack.processes if p.name == "web").log()
    assert "Traceback" not in web, web[-5000:]


# --- stateful: create, then follow the job or schedule by the id its answer gave -----------------------------------

# Submits the stack's worker types accept, in each state a job can be in when the next call comes: done in a moment,
# running for a while (cancel -> 202), failing, retried, never consumed (queued) and deferred (scheduled).
VALID_SUBMITS = [
    {"type": "add", "params": {"x": 1, "y": 2}},
    {"type": "sleeper", "params": {"seconds": 2}},
    {"type": "failer", "params": {"code": 4}},
    {"type": "flaky", "params": {}},
    {"type": "parked", "params": {}},
    {"type": "add", "params": {"x": 1, "y": 2}, "countdown": 600},
    {"type": "fakejob", "params": {"delay_seconds": 0.5}, "project": "stateful"},
]
# Schedules that make no job during the test (the first run is an hour or a year away); a name each.
VALID_SCHEDULES = [
    {"type": "add", "params": {"x": 1, "y": 2}, "interval_seconds": 3600},
    {"type": "parked", "cron": "0 0 1 1 *", "timezone": "Europe/Ljubljana", "enabled": False},
]
JOB, SCHEDULE = "/api/worker/jobs", "/api/worker/schedules"
# What the scenarios must have reached for the run to count: each a (method, path template) and the statuses.
LIFECYCLE = {
    ("POST", JOB): {202},
    ("GET", JOB + "/{job_id}"): {200},
    ("DELETE", JOB + "/{job_id}"): {200, 202},
    ("GET", JOB + "/{job_id}/logs"): {200},
    ("GET", JOB + "/{job_id}/attempts"): {200},
    ("POST", SCHEDULE): {201},
    ("GET", SCHEDULE + "/{schedule_id}"): {200},
    ("POST", SCHEDULE + "/{schedule_id}/enable"): {200},
    ("GET", SCHEDULE + "/{schedule_id}/runs"): {200},
    ("DELETE", SCHEDULE + "/{schedule_id}"): {204},
}
STATEFUL_SCENARIOS = 150
STATEFUL_STEPS = 10
STATEFUL_SECONDS = 90


def test_stateful_job_lifecycle_has_no_server_error(schemathesis_stack):
    """Schemathesis's state machine, with the links it infers from the document: submit -> get, cancel, logs,
    attempts; create a schedule -> get, change, enable, disable, runs, delete. No 5xx, each answer as documented."""
    pytest.importorskip("schemathesis", reason="schemathesis is in the test extra: pip install -e '.[test]'")
    import hypothesis
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import Failure, FailureGroup
    from schemathesis.specs.openapi import checks

    from tests.schemathesis_hooks import server_refusal

    auth = {"Authorization": f"Bearer {TOKEN}"}
    schema = schemathesis.openapi.from_url(f"{schemathesis_stack.url}/openapi.json", headers=auth)
    schema.config.update(headers=auth, request_timeout=10)
    seen: dict[tuple[str, str], set[int]] = {}
    failures: list[str] = []
    scenarios: list[int] = []
    restarts = 0

    valid_schedules = st.builds(
        lambda name, values: {"name": f"stateful-{name.hex[:12]}", **values},
        st.uuids(),
        st.sampled_from(VALID_SCHEDULES),
    )

    @schema.hook
    def flatmap_body(context, body):
        """Half of the creations are jobs and schedules the stack takes, so there is something to follow."""
        operation = context.operation
        where = (operation.method.upper(), operation.path) if operation is not None else None
        if where == ("POST", JOB):
            return st.sampled_from(VALID_SUBMITS) | st.just(body)
        if where == ("POST", SCHEDULE):
            return valid_schedules | st.just(body)
        return st.just(body)

    class Lifecycle(schema.as_state_machine()):
        def setup(self):
            scenarios.append(len(scenarios))

        def after_call(self, response, case):
            super().after_call(response, case)
            seen.setdefault((case.method.upper(), case.path), set()).add(response.status_code)

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            """Failures are collected, not raised: a replay to shrink one would meet a server in another state."""
            if server_refusal(response):  # gunicorn's own HTML refusal: the API never saw it
                return
            try:
                case.validate_response(
                    response,
                    checks=[
                        not_a_server_error,
                        checks.status_code_conformance,
                        checks.content_type_conformance,
                        checks.response_headers_conformance,
                        checks.response_schema_conformance,
                    ],
                    transport_kwargs=kwargs or None,
                )
            except (Failure, FailureGroup) as exc:
                failures.append(f"{case.as_curl_command()}\n-> {response.status_code}: {exc}"[:3000])

    # A live stack answers a replayed scenario from another state (a job that was running has ended), which
    # Hypothesis reports as Flaky and stops; schemathesis's own runner then starts the suite again, and so do we.
    deadline = time.monotonic() + STATEFUL_SECONDS
    while len(scenarios) < STATEFUL_SCENARIOS and time.monotonic() < deadline:
        try:
            Lifecycle.run(
                settings=hypothesis.settings(
                    max_examples=STATEFUL_SCENARIOS - len(scenarios),
                    stateful_step_count=STATEFUL_STEPS,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(hypothesis.HealthCheck),
                )
            )
        except hypothesis.errors.Flaky:
            restarts += 1
    print(f"{len(scenarios)} scenarios, {restarts} restarts; reached: {seen}")
    assert not failures, "\n\n".join(failures[:10])
    missed = {
        f"{method} {path} {sorted(wanted)}": sorted(seen.get((method, path), ()))
        for (method, path), wanted in LIFECYCLE.items()
        if not seen.get((method, path), set()) & wanted
    }
    assert not missed, f"the scenarios never reached these steps (statuses seen instead): {missed}"
    web = next(p for p in schemathesis_stack.processes if p.name == "web").log()
    assert "Traceback" not in web, web[-5000:]
    assert requests.get(f"{schemathesis_stack.url}/healthz", timeout=5).ok
