"""The planner through HTTP on the embedded stack (gunicorn and a real worker): plans by the rules, the 422s, execute
(dry run, made, made again, run now), and the model step against a local chat-completions server that answers a
good plan, bad JSON, an unknown type, a plan that does not hold, or too late.

The planner reads text and writes schedules, the same on every backend, so one stack is enough.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.stack import running_stack

KEY = "planner-test-key"
# The API's tokens: one for every project (the session's), one for project "shop" alone.
ALL, SHOP = "planner-every-project-token", "planner-shop-only-token"
MODEL_NAME = "test-planner-model"
# The stack's ROBOTNI_PLANNER_LLM_TIMEOUT; the "slow" answer comes this many times later.
TIMEOUT = 1
SLOW = 3
GOOD_PLAN = {
    "schedules": [
        {
            "type": "helloworld",
            "params": {},
            "cron": "*/10 9-17 * * 1-5",
            "interval_seconds": None,
            "timezone": None,
            "from": {"type": "greet", "cron": "every ten minutes in office hours"},
        }
    ],
    "unplaced": ["the", "team"],
}


class ChatServer(ThreadingHTTPServer):
    """An OpenAI-style chat-completions endpoint whose answer the test chooses (`mode`); it keeps what it was sent."""

    daemon_threads = True
    mode = "unavailable"
    requests: list[dict]


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"authorization": self.headers.get("Authorization"), "body": body})
        mode = self.server.mode
        if mode == "unavailable":
            self._send(503, b'{"error": "overloaded"}')
            return
        if mode == "redirect":  # followed, it would take the key elsewhere
            self._send(302, b"{}", {"Location": "http://127.0.0.1:9/v1/chat/completions"})
            return
        if mode == "slow":
            time.sleep(SLOW * TIMEOUT)
        content = {
            "good": json.dumps(GOOD_PLAN),
            "fenced": "```json\n" + json.dumps(GOOD_PLAN) + "\n```",
            "slow": json.dumps(GOOD_PLAN),
            "bad_json": '{"schedules": [{"type": "helloworld", "cron": "0 7 * * *"',
            "unknown_type": json.dumps({"schedules": [{"type": "nosuchtype", "cron": "0 7 * * *"}]}),
            "bad_params": json.dumps({"schedules": [{"type": "add", "params": {"x": 1}, "cron": "0 7 * * *"}]}),
            "not_a_plan": json.dumps({"schedules": [{"kind": "helloworld", "when": "at seven"}]}),
            "bad_cron": json.dumps({"schedules": [{"type": "helloworld", "cron": "at seven"}]}),
        }[mode]
        answer = {"id": "chatcmpl-1", "object": "chat.completion", "model": MODEL_NAME}
        answer["choices"] = [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ]
        self._send(200, json.dumps(answer).encode())

    def _send(self, status: int, payload: bytes, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the slow answer: the API stopped waiting long ago
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def chat():
    server = ChatServer(("127.0.0.1", 0), ChatHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, chat):
    env = {
        "ROBOTNI_PLANNER_LLM_URL": f"http://127.0.0.1:{chat.server_port}/v1/chat/completions",
        "ROBOTNI_PLANNER_LLM_KEY": KEY,
        "ROBOTNI_PLANNER_LLM_MODEL": MODEL_NAME,
        "ROBOTNI_PLANNER_LLM_TIMEOUT": str(TIMEOUT),
        "ROBOTNI_API_TOKENS": f"{ALL}:*;{SHOP}:shop",
    }
    with running_stack(tmp_path_factory.mktemp("planner"), env) as running:
        running.http.headers["Authorization"] = f"Bearer {ALL}"
        yield running


@pytest.fixture
def model(chat):
    """The chat server, answering 503 unless the test sets another mode."""
    chat.mode = "unavailable"
    chat.requests.clear()
    return chat


def post(stack, what: str, expect: int = 200, **body) -> dict:
    response = stack.http.post(stack.api(f"/planner/{what}"), json=body)
    assert response.status_code == expect, response.text
    return response.json()


# --- the rules ---------------------------------------------------------------------------------------------------


def test_plan_by_the_rules_says_where_each_field_came_from(stack, model):
    plan = post(
        stack, "plan", prompt="please run fakejob every weekday at 6pm and water the plants", timezone="Asia/Jakarta"
    )
    assert plan["source"] == "rules" and "HTTP 503" in plan["model_error"]
    assert plan["schedules"] == [
        {
            "name": "fakejob-weekdays-1800",
            "type": "fakejob",
            "params": {},
            "project": "default",
            "cron": "0 18 * * 1-5",
            "interval_seconds": None,
            "timezone": "Asia/Jakarta",
            "from": {"type": "fakejob", "cron": "every weekday at 6pm"},
        }
    ]
    assert plan["unplaced"] == ["water", "plants"]
    indonesian = post(stack, "plan", prompt="jalankan helloworld tiap 30 detik", project="ops")
    assert [(s["name"], s["interval_seconds"], s["cron"], s["project"]) for s in indonesian["schedules"]] == [
        ("helloworld-every-30s", 30, None, "ops")
    ]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"prompt": "run fakejob"}, "prompt", "no time: say when, e.g. 'every day at 07:00'"),
        ({"prompt": "every day at 07:00"}, "prompt", "no worker type matches: known types are add, "),
        ({"prompt": "fakejob on the last day of the month"}, "prompt", "could not read 'last'"),
        ({"prompt": "add every day at 7"}, "params", "add-daily-0700: params.x: 'x' is a required property"),
        ({"prompt": "fakejob every day at 7", "timezone": "Nowhere/Land"}, "timezone", "unknown timezone"),
        ({"prompt": ""}, "prompt", None),
        ({"prompt": "fakejob daily", "project": "no spaces"}, "project", None),
    ],
)
def test_a_prompt_it_cannot_plan_is_422_saying_what_is_missing(stack, model, body, field, says):
    for what in ("plan", "execute"):
        refused = post(stack, what, expect=422, **body)
        assert field in refused["errors"]["json"], refused
        assert says is None or says in refused["message"], refused


# --- execute -----------------------------------------------------------------------------------------------------


def schedule_named(stack, name: str, project: str = "default") -> dict | None:
    listed = stack.http.get(stack.api("/schedules"), params={"project": project}).json()
    return next((s for s in listed if s["name"] == name), None)


def test_execute_dry_run_then_makes_then_leaves_unchanged_then_updates(stack, model):
    prompt = {"prompt": "fakejob with delay_seconds=1 harian jam 07:00", "timezone": "Asia/Jakarta"}
    dry = post(stack, "execute", **prompt, dry_run=True)
    assert dry["dry_run"] and dry["source"] == "rules"
    [planned] = dry["schedules"]
    assert planned["action"] == "would_create" and planned["job_id"] is None
    assert planned["schedule"]["name"] == "fakejob-daily-0700" and "id" not in planned["schedule"]
    assert planned["schedule"]["next_run_at"].endswith("T00:00:00+00:00")  # 07:00 in Jakarta
    assert schedule_named(stack, "fakejob-daily-0700") is None

    [made] = post(stack, "execute", **prompt)["schedules"]
    assert made["action"] == "created" and made["job_id"] is None
    shown = stack.http.get(stack.api(f"/schedules/{made['schedule']['id']}")).json()
    assert made["schedule"] == shown
    assert (shown["cron"], shown["timezone"], shown["params"]) == ("0 7 * * *", "Asia/Jakarta", {"delay_seconds": 1})

    [again] = post(stack, "execute", **prompt)["schedules"]
    assert again["action"] == "unchanged" and again["schedule"] == shown

    changed = {"prompt": "fakejob with delay_seconds=2 every day at 07:00", "timezone": "Asia/Jakarta"}
    [would] = post(stack, "execute", **changed, dry_run=True)["schedules"]
    assert would["action"] == "would_update" and would["schedule"]["id"] == shown["id"]
    assert stack.http.get(stack.api(f"/schedules/{shown['id']}")).json() == shown
    [updated] = post(stack, "execute", **changed)["schedules"]
    assert updated["action"] == "updated" and updated["schedule"]["params"] == {"delay_seconds": 2}
    assert updated["schedule"]["next_run_at"] == shown["next_run_at"]  # the timing did not change


def test_run_immediately_makes_a_job_that_completes_as_one_of_the_schedules_runs(stack, model):
    executed = post(stack, "execute", prompt="helloworld setiap Senin jam 9 pagi", run_immediately=True)
    [made] = executed["schedules"]
    assert made["action"] == "created" and made["job_id"]
    done = stack.wait_for(made["job_id"])
    assert (done["status"], done["type"]) == ("completed", "helloworld")
    runs = stack.http.get(stack.api(f"/schedules/{made['schedule']['id']}/runs")).json()
    assert [run["job_id"] for run in runs] == [made["job_id"]]
    after = stack.http.get(stack.api(f"/schedules/{made['schedule']['id']}")).json()
    assert after["last_job_id"] == made["job_id"] and after["next_run_at"] == made["schedule"]["next_run_at"]
    [dry] = post(stack, "execute", prompt="helloworld setiap Senin jam 9 pagi", run_immediately=True, dry_run=True)[
        "schedules"
    ]
    assert dry["action"] == "unchanged" and dry["job_id"] is None  # a dry run runs nothing


def test_a_planned_name_of_another_projects_schedule_is_409_and_nothing_is_made(stack, model):
    theirs = {"name": "helloworld-every-45s", "type": "helloworld", "interval_seconds": 3600, "project": "theirs"}
    assert stack.http.post(stack.api("/schedules"), json=theirs).status_code == 201
    refused = post(stack, "execute", expect=409, prompt="helloworld every 45 seconds; fakejob every 45 seconds")
    assert "another project" in refused["message"]
    assert schedule_named(stack, "fakejob-every-45s") is None
    assert schedule_named(stack, "helloworld-every-45s", "theirs")["interval_seconds"] == 3600


def test_a_token_plans_and_makes_schedules_only_in_its_projects(stack, model):
    shop = {"Authorization": f"Bearer {SHOP}"}
    for what in ("plan", "execute"):
        url = stack.api(f"/planner/{what}")
        refused = stack.http.post(url, json={"prompt": "helloworld every 20 seconds"}, headers=shop)
        assert refused.status_code == 403 and "'default'" in refused.json()["message"]
    made = stack.http.post(
        stack.api("/planner/execute"), json={"prompt": "helloworld every 20 seconds", "project": "shop"}, headers=shop
    )
    assert made.status_code == 200 and made.json()["schedules"][0]["schedule"]["project"] == "shop"
    assert schedule_named(stack, "helloworld-every-20s") is None  # in "default": nothing


def test_openapi_documents_the_planner(stack):
    paths = stack.http.get(stack.url + "/openapi.json").json()["paths"]
    assert paths["/api/worker/planner/plan"]["post"]["operationId"] == "planSchedules"
    assert paths["/api/worker/planner/execute"]["post"]["operationId"] == "executePlan"


# --- the model step ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["good", "fenced"])
def test_a_model_plan_that_holds_is_used(stack, model, mode):
    model.mode = mode
    plan = post(stack, "plan", prompt="greet the team every ten minutes in office hours", timezone="Asia/Jakarta")
    assert (plan["source"], plan["model_error"]) == ("model", None)
    [one] = plan["schedules"]
    assert (one["type"], one["cron"], one["interval_seconds"]) == ("helloworld", "*/10 9-17 * * 1-5", None)
    assert one["timezone"] == "Asia/Jakarta" and one["project"] == "default"
    assert one["name"].startswith("helloworld-cron-") and one["from"] == GOOD_PLAN["schedules"][0]["from"]
    assert plan["unplaced"] == ["the", "team"]
    [sent] = model.requests
    assert sent["authorization"] == f"Bearer {KEY}" and sent["body"]["model"] == MODEL_NAME
    system, user = sent["body"]["messages"]
    assert "- fakejob: Waits a random time" in system["content"] and '"delay_seconds"' in system["content"]
    assert "greet the team every ten minutes in office hours" in user["content"] and "Asia/Jakarta" in user["content"]
    executed = post(stack, "execute", prompt="greet the team every ten minutes in office hours")
    assert executed["source"] == "model" and executed["schedules"][0]["schedule"]["cron"] == "*/10 9-17 * * 1-5"


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("unavailable", "HTTP 503"),
        ("redirect", "HTTP 302"),
        ("bad_json", "not JSON"),
        ("unknown_type", "unknown worker type 'nosuchtype'"),
        ("bad_params", "'y' is a required property"),
        ("not_a_plan", "does not fit the plan schema"),
        ("bad_cron", "not a 5-field cron expression"),
        ("slow", f"no answer from the model within {TIMEOUT} s"),
    ],
)
def test_a_model_answer_that_fails_falls_back_to_the_rules_saying_why(stack, model, mode, why):
    model.mode = mode
    started = time.monotonic()
    plan = post(stack, "plan", prompt="fakejob every day at 07:00")
    assert plan["source"] == "rules" and why in plan["model_error"], plan
    assert [(s["type"], s["cron"]) for s in plan["schedules"]] == [("fakejob", "0 7 * * *")]
    assert len(model.requests) == 1
    if mode == "slow":  # the API stopped waiting at its timeout, not at the model's answer
        assert time.monotonic() - started < SLOW * TIMEOUT


def test_when_the_model_fails_and_the_rules_cannot_plan_it_is_422(stack, model):
    model.mode = "unknown_type"
    refused = post(stack, "plan", expect=422, prompt="run helloworld sometime")
    assert refused["message"].startswith("no time: say when")
    assert "the model's plan was not used: " in refused["message"] and "nosuchtype" in refused["message"]
