"""Properties of the API for any input a client can send (issue 13, "No 5xx from input").

Through the Flask app's test client, on a fresh store (SQLite, and PostgreSQL too when ROBOTNI_TEST_POSTGRES_URL is
set, as in CI) and a filesystem broker in a temp folder: for every field a client sends, the answer is never 5xx, a
4xx is flask-smorest's error JSON, and a 4xx stored and published nothing (the jobs' count, versions and last update,
every schedule row and every message file in the broker folder are compared before and after each request).
Run longer hunts with PROPERTY_EXAMPLES=2000.
"""

from __future__ import annotations

import base64
import importlib
import itertools
import json
import os
import sys
import warnings
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tests import backends

ROOT = Path(__file__).resolve().parent.parent
API = "/api/worker"
ADMIN = "properties-admin-" + "a" * 20
SHOP = "properties-shop-" + "s" * 20
# Every property: a modest number of examples, so the whole file runs in well under a minute on 2 cores.
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "60"))
FEW = max(1, EXAMPLES // 2)
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis folder in the checkout; a failure prints its example
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Scripts in the scripts folder that a python-script job may name (regular files, no symlink on the way).
RUNNABLE = {"ok.py", "sub/inner.py", "ünï/cödé.py", "with space.py"}


# --- the app on a store, a broker and folders of its own ----------------------------------------------------


def _engine_module():
    """Where this process's engine cache lives (robotni.store.engine, or robotni.store.models before the split)."""
    try:
        return importlib.import_module("robotni.store.engine")
    except ImportError:
        return importlib.import_module("robotni.store.models")


def _forget_cached_settings() -> None:
    """Settings, worker types, the engine and Celery's broker are read once per process: read them again."""
    from robotni import config
    from robotni.worktypes import registry

    config.reset()
    registry.registry.cache_clear()
    engines = _engine_module()._engines
    for eng in engines.values():
        eng.dispose()
    engines.clear()
    celeryconfig = sys.modules.get("robotni.broker.celeryconfig")
    if celeryconfig is None:
        return  # Celery reads it at the first publish, from the settings of then
    from robotni.celery import app as celery_app  # an earlier test of this process published elsewhere

    try:
        celeryconfig = importlib.reload(celeryconfig)
    except Exception as exc:  # the restored environment has no usable workers folder: nothing will publish
        warnings.warn(f"Celery's settings could not be read again: {exc}", stacklevel=1)
        return
    names = ("broker_url", "broker_transport", "broker_transport_options", "task_queues")
    celery_app.conf.update({name: getattr(celeryconfig, name) for name in names})
    celery_app._after_fork()  # its connection and producer pools, made for the previous broker


def _write_scripts(scripts: Path) -> None:
    for name in RUNNABLE:
        (scripts / name).parent.mkdir(parents=True, exist_ok=True)
        (scripts / name).write_text("print('hi')\n")
    (scripts / "empty-folder").mkdir()
    (scripts / "link.py").symlink_to(scripts / "ok.py")
    (scripts / "linkdir").symlink_to(scripts / "sub")
    (scripts / "dangling.py").symlink_to(scripts / "gone.py")
    (scripts / "outside.py").symlink_to("/etc/passwd")
    os.mkfifo(scripts / "pipe.py")


def _write_venvs(venvs: Path) -> None:
    """`good` is a venv as far as the submit check looks (pyvenv.cfg, bin/python); the others are not."""
    good = venvs / "good"
    (good / "bin").mkdir(parents=True)
    (good / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).parent}\n")
    (good / "bin" / "python").symlink_to(sys.executable)
    (venvs / "noconfig" / "bin").mkdir(parents=True)
    (venvs / "nopython").mkdir()
    (venvs / "nopython" / "pyvenv.cfg").write_text("")
    shim = venvs / "shim"
    (shim / "bin").mkdir(parents=True)
    (shim / "pyvenv.cfg").write_text("")
    (shim / "bin" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (shim / "bin" / "python").chmod(0o755)
    (venvs / "linked").symlink_to(good)
    (venvs / "file").write_text("")


def _write_workers(workers: Path) -> None:
    workers.mkdir()
    for name in ("add.py", "fakejob.py", "helloworld.py"):
        (workers / name).write_text((ROOT / "workers" / name).read_text())
    (workers / "pinned.py").write_text(  # its own (standard library) environment: a job may not pick a venv
        '# /// script\n# dependencies = []\n# [tool.robotni]\n# description = "own environment"\n# ///\n'
        "print('pinned')\n"
    )


@dataclass
class Api:
    client: Any
    base: Path
    broker: Path
    job_id: str = ""
    schedule_id: str = ""
    cursor: str = ""

    def snapshot(self) -> tuple:
        """What a request may change: the jobs (each change bumps a version), the schedules, the broker's messages."""
        with _engine_module().engine().connect() as conn:
            jobs = conn.execute(text("SELECT count(*), sum(version), max(updated_at) FROM jobs")).one()
            schedules = conn.execute(text("SELECT * FROM schedules ORDER BY id")).all()  # a handful
        return tuple(jobs), schedules, self.messages()

    def messages(self) -> set[str]:
        return {os.path.join(folder, name) for folder, _, files in os.walk(self.broker) for name in files}

    def open(self, method: str, url: str, token: str | None = ADMIN, headers: dict | None = None, **kwargs):
        """The request, checked: never 5xx; a 4xx is error JSON and changed nothing."""
        headers = dict(headers or {})
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        before = self.snapshot()
        response = self.client.open(
            url, method=method, headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}, **kwargs
        )
        sent = f"{method} {url} {headers} {kwargs}"[:2000]
        assert response.status_code < 500, f"{sent}\n-> {response.status_code} {response.get_data()[:2000]!r}"
        if 400 <= response.status_code < 500:
            if method != "HEAD":  # no body to a HEAD
                assert_error_json(response, sent)
            assert self.snapshot() == before, f"{sent}\n-> {response.status_code}, yet the store or broker changed"
        return response

    def submit(self, body: Any = None, **kwargs):
        return self.open("POST", f"{API}/jobs", json=body, **kwargs)


def assert_error_json(response, sent: str = "") -> None:
    """flask-smorest's error shape: {"code", "status", "message"?, "errors"?}, code being the HTTP status."""
    body = response.get_json(silent=True)
    where = f"{sent}\n-> {response.status_code} {response.get_data()[:1000]!r}"
    assert response.mimetype == "application/json", where
    assert isinstance(body, dict) and set(body) <= {"code", "status", "message", "errors"}, where
    assert body["code"] == response.status_code and isinstance(body["status"], str) and body["status"], where
    assert isinstance(body.get("message", ""), str) and isinstance(body.get("errors", {}), dict), where


def json_errors(response) -> dict:
    return response.get_json().get("errors", {}).get("json", {})


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request):
    """The embedded store, and PostgreSQL (as CI runs it) when ROBOTNI_TEST_POSTGRES_URL names a server."""
    if request.param == "sqlite":
        yield None
        return
    if backends.POSTGRES is None:
        pytest.skip("PostgreSQL: set ROBOTNI_TEST_POSTGRES_URL to run these properties on it too")
    backend = backends.Backend("postgresql")
    backends._postgres(backend)  # a database of its own, dropped after the module
    try:
        yield backend.env["ROBOTNI_DATABASE_URL"]
    finally:
        backend.release()


@pytest.fixture(scope="module")
def api(tmp_path_factory, database):
    base = tmp_path_factory.mktemp("properties")
    for folder in ("scripts", "venvs"):
        (base / folder).mkdir()
    _write_scripts(base / "scripts")
    _write_venvs(base / "venvs")
    _write_workers(base / "workers")
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("ROBOTNI_")]:
            patch.delenv(name)
        values = {
            "DATA_DIR": base / "var",
            "WORKERS_DIR": base / "workers",
            "SCRIPTS_DIR": base / "scripts",
            "VENVS_DIR": base / "venvs",
            "BROKER_URL": "filesystem://",  # the embedded broker, in DATA_DIR/broker: publishing needs no worker
            "API_TOKENS": f"{ADMIN}:*;{SHOP}:shop",
            "RATE_PER_SECOND": "100000",
            "RATE_BURST": "100000",
            "LOG_FORMAT": "json",
        }
        if database is not None:
            values["DATABASE_URL"] = database
        for name, value in values.items():
            patch.setenv(f"ROBOTNI_{name}", str(value))
        _forget_cached_settings()
        if database is not None:  # the embedded store migrates itself; another must be at head already
            store = _engine_module()
            fresh = store.make_engine(database)
            store.create_schema(fresh)
            fresh.dispose()
        from robotni.api.app import create_app

        running = Api(create_app().test_client(), base, base / "var" / "broker")
        try:
            for x in range(3):
                first = running.submit({"type": "add", "params": {"x": x, "y": 1}})
                assert first.status_code == 202, first.get_data()
            running.job_id = first.get_json()["id"]
            schedule = {"name": "every-minute", "type": "add", "params": {"x": 1, "y": 2}, "cron": "* * * * *"}
            made = running.open("POST", f"{API}/schedules", json=schedule)
            assert made.status_code == 201, made.get_data()
            running.schedule_id = made.get_json()["id"]
            page = running.open("GET", f"{API}/jobs?limit=1")
            running.cursor = page.get_json()["next_cursor"]
            assert running.cursor
            yield running
        finally:
            _forget_cached_settings()  # closes this store's connections
    _forget_cached_settings()  # the next module of this process reads its own environment


# --- strategies -------------------------------------------------------------------------------------------------

# Any JSON value: the shapes a client can send, unicode and numbers at their edges included.
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=25,
)
names = st.text(max_size=40) | st.sampled_from(["add", "fakejob", "helloworld", "pinned", "python-script", ""])
texts = (
    st.text(max_size=60)
    | st.sampled_from(["", " ", "\0", "..", "/", "%00", "\u202e", "😀" * 5, "a" * 300, "null", "[]", "{}"])
    | st.binary(max_size=40).map(lambda b: b.decode("latin-1"))
)


def nested(depth: int, leaf: Any = 1) -> str:
    """A JSON document nested `depth` lists deep, written by hand (json.dumps would recurse as deep)."""
    return "[" * depth + json.dumps(leaf) + "]" * depth


def header_values(extra: list[str] = ()) -> st.SearchStrategy[str]:
    """What reaches a WSGI app as a header: bytes read as latin-1, without CR, LF or NUL (servers refuse those)."""
    raw = st.binary(max_size=80) | st.text(max_size=60).map(lambda s: s.encode())
    return (raw.map(lambda b: b.decode("latin-1")) | st.sampled_from(["", " ", *extra])).filter(
        lambda s: not set(s) & {"\r", "\n", "\0"}
    )


# --- submits ---------------------------------------------------------------------------------------------------


@PROPERTY
@given(body=json_values | st.dictionaries(st.sampled_from(["type", "params", "project", "venv"]), json_values))
def test_any_json_body_is_answered_without_a_server_error(api, body):
    api.submit(body)


@PROPERTY
@given(
    type_name=names,
    params=json_values,
    project=st.sampled_from(["default", "shop"]) | texts,
    venv=st.none() | st.sampled_from(["good"]) | texts,
)
def test_any_type_params_project_and_venv(api, type_name, params, project, venv):
    response = api.submit({"type": type_name, "params": params, "project": project, "venv": venv})
    if response.status_code == 202:
        job = response.get_json()
        assert response.headers["Location"].endswith(f"/jobs/{job['id']}")
        assert (job["type"], job["project"], job["venv"]) == (type_name, project, venv)


@settings(PROPERTY, max_examples=FEW)
@given(
    depth=st.integers(1, 200) | st.integers(1000, 200_000),
    type_name=st.sampled_from(["add", "fakejob", "python-script"]),
)
def test_deep_params_are_refused_not_crashed_on(api, depth, type_name):
    body = f'{{"type": "{type_name}", "params": {{"x": {nested(depth)}}}}}'
    response = api.open("POST", f"{API}/jobs", data=body, content_type="application/json")
    assert response.status_code in (400, 413, 422), response.get_data()[:300]


@settings(PROPERTY, max_examples=max(1, EXAMPLES // 6))
@given(size=st.integers(200 * 1024, 2 * 1024 * 1024), type_name=st.sampled_from(["add", "python-script"]))
def test_huge_params_are_refused(api, size, type_name):
    body = json.dumps({"type": type_name, "params": {"x": "a" * size}})
    response = api.open("POST", f"{API}/jobs", data=body, content_type="application/json")
    assert response.status_code in (413, 422)
    if response.status_code == 422 and size > 256 * 1024:
        assert "params" in json_errors(response)


def _runnable(script: str) -> bool:
    """The oracle: the path names a regular file of RUNNABLE, written plainly or with '.' and '/' padding."""
    if "\0" in script or script.startswith("/") or len(script) > 1024:
        return False
    parts = [p for p in script.split("/") if p not in ("", ".")]
    return ".." not in parts and "/".join(parts) in RUNNABLE


segments = st.sampled_from(
    [
        *("ok.py", "sub", "inner.py", "ünï", "cödé.py", "with space.py", "link.py", "linkdir", "dangling.py"),
        *("outside.py", "pipe.py", "empty-folder", "..", ".", "", "gone.py", "\0", "ok.py\0", "😀", "a" * 300),
    ]
)
script_paths = (
    st.lists(segments, min_size=1, max_size=5).map("/".join)
    | st.lists(segments, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
    | st.sampled_from([".", "./", "./.", "", "/", "//", "sub/", "sub/.", "./sub", "..", "../scripts/ok.py"])
    | st.text(max_size=30)
    | st.just("x" * 1025)
)


@PROPERTY
@given(
    script=script_paths,
    args=st.none() | st.lists(st.text(st.characters(exclude_characters="\0"), max_size=9), max_size=3),
)
def test_a_script_path_runs_only_a_regular_file_inside_the_scripts_folder(api, script, args):
    params = {"script": script} if args is None else {"script": script, "args": args}
    response = api.submit({"type": "python-script", "params": params})
    if _runnable(script):
        assert response.status_code == 202, response.get_data()[:500]
    else:
        assert response.status_code == 422, (script, response.status_code, response.get_data()[:500])
        assert "script" in json_errors(response).get("params", {}), response.get_json()


@PROPERTY
@given(args=st.lists(texts, max_size=4))
def test_python_script_args_are_accepted_only_when_a_process_can_take_them(api, args):
    """A NUL cannot be in an argv: such a job was accepted and its runner then raised ValueError (issue 13)."""
    response = api.submit({"type": "python-script", "params": {"script": "ok.py", "args": args}})
    if any("\0" in arg or len(arg) > 4096 for arg in args):
        assert response.status_code == 422
        assert any(key.startswith("args") for key in json_errors(response)["params"]), response.get_json()
    else:
        assert response.status_code == 202, response.get_data()[:500]
        assert response.get_json()["params"]["args"] == args


def test_a_nul_in_python_script_args_is_refused(api):
    response = api.submit({"type": "python-script", "params": {"script": "ok.py", "args": ["-v", "a\0b"]}})
    assert response.status_code == 422, response.get_data()
    assert json_errors(response)["params"]["args.1"], response.get_json()


@pytest.mark.parametrize("script", [".", "./", "./.", ".//.", "", "sub", "sub/", "sub/.", "empty-folder"])
def test_a_folder_as_script_is_refused_naming_params_script(api, script):
    """Regression (issue 13): the scripts folder itself ('.') answered 500, not 422."""
    response = api.submit({"type": "python-script", "params": {"script": script}})
    assert response.status_code == 422, response.get_data()
    assert json_errors(response)["params"]["script"], response.get_json()


@PROPERTY
@given(
    venv=st.sampled_from(["good", "noconfig", "nopython", "shim", "linked", "file", "missing", "../venvs/good"])
    | st.sampled_from(["good/", "./good", "good\0", ".", "..", "-good", "g" * 65, "gööd"])
    | texts,
    type_name=st.sampled_from(["add", "pinned", "python-script"]),
)
def test_only_a_real_venv_by_plain_name_is_accepted(api, venv, type_name):
    params = {"script": "ok.py"} if type_name == "python-script" else {"x": 1, "y": 2}
    response = api.submit({"type": type_name, "params": params, "venv": venv})
    if venv == "good" and type_name != "pinned":
        assert response.status_code == 202, response.get_data()[:500]
    else:
        assert response.status_code == 422, (venv, response.status_code, response.get_data()[:500])
        assert "venv" in json_errors(response), response.get_json()


offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=st.none() | offsets
)
datetime_texts = (
    moments.map(datetime.isoformat)
    | st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01", "9999-12-31"])
    | st.sampled_from(["2026-02-30T00:00:00Z", "2026-01-01T24:00:00", "now", "", "1e10", "2026-01-01T00:00:00+25:00"])
    | texts
)


@PROPERTY
@given(
    start=st.sampled_from(["run_at", "countdown", "both"]),
    run_at=st.none() | datetime_texts | json_values,
    countdown=st.none()
    | st.floats()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, -1, 1e-300, 315_360_000, 315_360_001, 1e308])
    | json_values,
)
def test_any_start_time(api, start, run_at, countdown):
    body: dict[str, Any] = {"type": "add", "params": {"x": 1, "y": 2}}
    if start in ("run_at", "both"):
        body["run_at"] = run_at
    if start in ("countdown", "both"):
        body["countdown"] = countdown
    published = len(api.messages())
    # json.dumps writes NaN and Infinity as Python does: not JSON, so the app sees a malformed body.
    response = api.open("POST", f"{API}/jobs", data=json.dumps(body), content_type="application/json")
    if response.status_code == 202:
        job = response.get_json()
        scheduled = job["status"] == "scheduled"
        assert scheduled == (job["run_at"] is not None)
        assert len(api.messages()) == published + (0 if scheduled else 1)  # a deferred job is not published
    else:
        assert response.status_code in (400, 422), response.get_data()[:500]


# --- lists and cursors ------------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


cursors = (
    texts
    | st.binary(max_size=60).map(b64)
    | json_values.map(lambda v: b64(json.dumps(v).encode()))
    | st.tuples(datetime_texts, json_values).map(lambda pair: b64(json.dumps(list(pair)).encode()))
    | st.integers(1, 3000).map(lambda depth: b64(nested(depth, []).encode()))
    | st.integers(1, 3000).map(lambda depth: b64(("{" + '"a":{' * depth + "}" * depth + "}").encode()))
)
list_values = {
    "status": st.sampled_from(["queued", "running", "completed", "failed", "cancelled", "scheduled"]) | texts,
    "type": names,
    "project": st.sampled_from(["default", "shop"]) | texts,
    "created_after": datetime_texts,
    "created_before": datetime_texts,
    "limit": st.integers(-(2**70), 2**70).map(str) | st.sampled_from(["0", "1", "500", "501", "1.5", "1e3"]) | texts,
    "cursor": cursors,
}
list_queries = st.lists(
    st.sampled_from(sorted(list_values)).flatmap(lambda key: st.tuples(st.just(key), list_values[key]))
    | st.tuples(texts, texts),
    max_size=5,
)


@PROPERTY
@given(query=list_queries, token=st.sampled_from([ADMIN, SHOP]))
def test_any_list_filters(api, query, token):
    response = api.open("GET", f"{API}/jobs", token=token, query_string=query)
    assert response.status_code in (200, 422), response.get_data()[:500]
    if response.status_code == 200:
        page = response.get_json()
        assert set(page) == {"jobs", "next_cursor"}
        limit = next((value for key, value in query if key == "limit"), None)  # the first, as webargs reads it
        assert len(page["jobs"]) <= (50 if limit is None else int(limit))
        if token == SHOP:
            assert {job["project"] for job in page["jobs"]} <= {"shop"}


@PROPERTY
@given(cursor=cursors)
def test_a_cursor_not_given_out_is_refused_or_pages_on(api, cursor):
    response = api.open("GET", f"{API}/jobs", query_string={"cursor": cursor})
    assert response.status_code in (200, 422)
    if response.status_code == 422:
        assert "cursor" in response.get_json()["errors"]["query"]


@pytest.mark.parametrize(
    "query",
    [
        {"cursor": b64(nested(2000, []).encode())},  # json.loads recursed past Python's limit: 500
        {"created_after": "0001-01-01T00:00:00+01:00"},  # the UTC time is before year 1: OverflowError, 500
        {"created_before": "9999-12-31T23:59:59-01:00"},  # after year 9999
    ],
)
def test_list_inputs_that_crashed_are_refused(api, query):
    """Regression (issue 13): each of these answered 500."""
    response = api.open("GET", f"{API}/jobs", query_string=query)
    assert response.status_code == 422, response.get_data()
    assert set(response.get_json()["errors"]["query"]) == set(query)


NUL_REQUESTS = [  # PostgreSQL text cannot hold NUL: each of these answered 500 there (issue 13)
    ("GET", "/jobs/%00", {}, 404),
    ("DELETE", "/jobs/a%00b", {}, 404),
    ("GET", "/jobs/%00/logs", {}, 404),
    ("GET", "/jobs/%00/attempts", {}, 404),
    ("GET", "/schedules/%00", {}, 404),
    ("GET", "/schedules/x%00/runs", {}, 404),
    ("POST", "/schedules/%00/enable", {}, 404),
    ("GET", "/jobs", {"query_string": {"type": "add\0"}}, 422),
    ("GET", "/jobs", {"query_string": [("project", "default"), ("project", "\0")]}, 422),
    ("GET", "/schedules", {"query_string": {"project": "\0"}}, 422),
    ("GET", "/jobs", {"query_string": {"cursor": b64(json.dumps(["2026-01-01T00:00:00", "a\0"]).encode())}}, 422),
    ("POST", "/queue/flush", {"json": {"type": ["add\0"]}}, 422),
    ("POST", "/queue/flush", {"json": {"project": ["\0"]}}, 422),
    ("POST", "/jobs", {"json": {"type": "add", "params": {"x": 1, "y": 2}, "depends_on": ["a\0"]}}, 422),
    ("GET", "/workflows/%00", {}, 404),
    ("DELETE", "/workflows/a%00b", {}, 404),
    ("GET", "/workflows", {"query_string": {"name": "\0"}}, 422),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), NUL_REQUESTS)
def test_a_nul_character_is_refused_not_sent_to_the_store(api, method, path, kwargs, status):
    response = api.open(method, API + path, **kwargs)
    assert response.status_code == status, response.get_data()


def test_a_nul_character_in_an_idempotency_key_is_refused(api):
    """Servers like gunicorn refuse NUL in a header themselves; behind another one, the API must."""
    response = api.submit({"type": "add", "params": {"x": 1, "y": 2}}, headers={"Idempotency-Key": "k\0"})
    assert response.status_code == 422, response.get_data()
    assert "Idempotency-Key" in response.get_json()["errors"]["headers"]


def test_the_cursor_given_out_pages_on(api):
    response = api.open("GET", f"{API}/jobs", query_string={"cursor": api.cursor, "limit": 1})
    assert response.status_code == 200
    [job] = response.get_json()["jobs"]
    assert job["id"] != api.job_id  # the second newest, after the newest on page 1


# --- schedules --------------------------------------------------------------------------------------------------

_names = itertools.count()
cron_fields = st.sampled_from(
    [
        *("*", "*/5", "*/0", "0", "59", "60", "-1", "1-5", "5-1", "1,2", "L", "W", "?", "H", "H(0-5)", "#", "MON"),
        *("JAN", "mon-fri", "1#2", "LW", "0/5", "99999999999999999999", "٣", "*/99999999999999", "", "\0", "*\0"),
    ]
)
crons = (
    st.lists(cron_fields, min_size=5, max_size=5).map(" ".join)
    | st.lists(cron_fields, min_size=1, max_size=8).map(" ".join)
    | st.sampled_from(["* * * * *", "0 0 30 2 *", "0 0 31 4 *", "@daily", "@reboot", "0 0 * * * *"])
    | texts
)
timezones = (
    st.sampled_from(sorted(zoneinfo.available_timezones()))
    | st.sampled_from(["UTC", "", "America", "../etc/passwd", "/etc/localtime", "UTC\0", "Europe/../UTC"])
    | st.sampled_from(["posixrules", "right/UTC", "Factory", "zone.tab", "tzdata.zi", "leapseconds", "."])
    | texts
)
intervals = (
    st.none()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, 315_360_000, 315_360_001])
    | st.floats()
    | texts
    | st.booleans()
)


def timing_body(cron, tz, interval, which) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if which in ("cron", "both"):
        body["cron"] = cron
    if which in ("interval", "both"):
        body["interval_seconds"] = interval
    if tz is not None:
        body["timezone"] = tz
    return body


@PROPERTY
@given(
    cron=st.none() | crons,
    tz=st.none() | timezones,
    interval=intervals,
    which=st.sampled_from(["cron", "interval", "both", "neither"]),
    enabled=st.sampled_from([True, False, None, "yes", 0]),
)
def test_any_schedule_timing(api, cron, tz, interval, which, enabled):
    body = {"name": f"property-{next(_names)}", "type": "add", "params": {"x": 1, "y": 2}}
    body |= timing_body(cron, tz, interval, which)
    if enabled is not None:
        body["enabled"] = enabled
    response = api.open("POST", f"{API}/schedules", data=json.dumps(body), content_type="application/json")
    assert response.status_code in (201, 400, 422), response.get_data()[:500]
    if response.status_code == 201:
        schedule = response.get_json()
        assert (schedule["next_run_at"] is None) == (not schedule["enabled"])
        api.open("DELETE", f"{API}/schedules/{schedule['id']}")  # the next example starts from the same rows


@PROPERTY
@given(
    changes=st.fixed_dictionaries(
        {},
        optional={
            "name": st.sampled_from(["every-minute", "renamed"]) | texts,
            "type": names,
            "params": json_values,
            "project": st.sampled_from(["default", "shop"]) | texts,
            "venv": st.none() | st.sampled_from(["good"]) | texts,
            "cron": st.none() | crons,
            "timezone": timezones,
            "interval_seconds": intervals,
            "enabled": st.booleans() | json_values,
        },
    )
    | json_values,
    token=st.sampled_from([ADMIN, SHOP]),
)
def test_any_schedule_change(api, changes, token):
    url = f"{API}/schedules/{api.schedule_id}"
    before = api.open("GET", url).get_json()
    response = api.open("PATCH", url, token=token, json=changes)
    assert response.status_code in (200, 400, 404, 409, 422), response.get_data()[:500]
    if response.status_code == 200:  # put it back for the next example
        fields = ("name", "type", "params", "project", "venv", "cron", "timezone", "interval_seconds", "enabled")
        assert api.open("PATCH", url, json={k: before[k] for k in fields}).status_code == 200
    for action in ("enable", "disable", "enable"):
        api.open("POST", f"{url}/{action}", token=token)


# --- headers ----------------------------------------------------------------------------------------------------


@PROPERTY
@given(tag=header_values(['"x"', "*", 'W/"x"', '"a", "b"']), accept=header_values(["application/json", "*/*"]))
def test_any_if_none_match(api, tag, accept):
    url = f"{API}/jobs/{api.job_id}"
    response = api.open("GET", url, headers={"If-None-Match": tag, "Accept": accept})
    assert response.status_code in (200, 304), response.get_data()[:500]
    current = api.open("GET", url).headers["ETag"]
    assert api.open("GET", url, headers={"If-None-Match": current}).status_code == 304


@PROPERTY
@given(key=header_values(["k" * 255, "k" * 256]), project=st.sampled_from(["default", "shop", "other"]))
def test_any_idempotency_key(api, key, project):
    body = {"type": "add", "params": {"x": 1, "y": 2}, "project": project}
    first = api.submit(body, headers={"Idempotency-Key": key})
    assert first.status_code in (200, 202, 422), first.get_data()[:500]
    if first.status_code == 422:
        assert "Idempotency-Key" in first.get_json()["errors"]["headers"]
        return
    again = api.submit(body, headers={"Idempotency-Key": key})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]


@PROPERTY
@given(
    authorization=header_values([f"Bearer {ADMIN}", f"bearer {SHOP}", "Bearer", "Bearer ", f"Basic {ADMIN}"])
    | st.sampled_from([f"Bearer {ADMIN} ", f"Bearer  {SHOP}", f"Bearer {ADMIN[:-1]}", f"Bearer {ADMIN}x"]),
    method_path=st.sampled_from(
        [("GET", "/jobs"), ("POST", "/jobs"), ("GET", "/status"), ("POST", "/queue/flush"), ("GET", "/schedules")]
    ),
)
def test_any_authorization(api, authorization, method_path):
    method, path = method_path
    body = {"type": "add", "params": {"x": 1, "y": 2}, "project": "shop"} if path == "/jobs" else {}
    response = api.open(method, API + path, token=None, headers={"Authorization": authorization}, json=body)
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or secret.strip() not in (ADMIN, SHOP):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@PROPERTY
@given(
    content_type=header_values(["application/json", "application/json; charset=utf-16", "text/plain"])
    | st.sampled_from(["application/vnd.api+json", "application/json; charset=bogus", "multipart/form-data"])
    | st.sampled_from(["application/x-www-form-urlencoded", "application/json;", "application/json\t"]),
    body=st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.sampled_from([b"", b"{", b"\xff\xfe{}", '{"type": "add"}'.encode("utf-16"), b"null", b"[]"]),
    path=st.sampled_from(["/jobs", "/schedules", f"/schedules/{'{schedule}'}", "/queue/flush"]),
)
def test_any_content_type_and_body(api, content_type, body, path):
    method = "PATCH" if "{schedule}" in path else "POST"
    url = API + path.replace("{schedule}", api.schedule_id)
    response = api.open(method, url, data=body, headers={"Content-Type": content_type})
    if response.status_code == 415:  # only a body that is there is refused for its type
        assert response.request.environ.get("CONTENT_LENGTH") not in (None, "", "0")


READS = ["/healthz", "/readyz", "/metrics", "/openapi.json", "/", *(API + p for p in ("/status", "/types", "/queue"))]


@PROPERTY
@given(
    path=st.sampled_from([*READS, API + "/jobs", API + "/schedules"]),
    slash=st.booleans(),
    method=st.sampled_from(["GET", "GET", "OPTIONS", "HEAD"]),
    query=st.lists(st.tuples(texts, texts), max_size=4),
    headers=st.dictionaries(
        st.sampled_from(["Origin", "Accept", "Accept-Encoding", "X-Request-Id", "Access-Control-Request-Method"])
        | st.sampled_from(["Access-Control-Request-Headers", "X-Forwarded-For", "Range", "Cookie"]),
        header_values(["https://app.example.com", "null", "*/*", "gzip", "bytes=0-1", "bytes=9-1"]),
        max_size=3,
    ),
)
def test_any_query_and_headers_on_every_read(api, path, slash, method, query, headers):
    url = path + "/" if slash and path != "/" else path
    response = api.open(method, url, query_string=query, headers=headers)
    assert response.status_code in (200, 204, 206, 304, 308, 404, 405, 416, 422), response.get_data()[:500]


# --- ids in paths -----------------------------------------------------------------------------------------------

job_routes = ["/jobs/{}", "/jobs/{}/logs", "/jobs/{}/attempts"]
schedule_routes = ["/schedules/{}", "/schedules/{}/enable", "/schedules/{}/disable", "/schedules/{}/runs"]


@PROPERTY
@given(
    identifier=texts | st.uuids().map(str),
    route=st.sampled_from(job_routes + schedule_routes),
    method=st.sampled_from(["GET", "POST", "DELETE", "PATCH", "PUT", "OPTIONS", "HEAD"]),
)
def test_any_id_in_a_path(api, identifier, route, method):
    assume(identifier not in ("", ".", ".."))  # the client resolves these segments before the app sees them
    url = API + route.format(quote(identifier, safe=""))
    response = api.open(method, url, json={} if method in ("POST", "PATCH", "PUT") else None)
    # 308: an id with '/' (%2F is decoded before routing) made '//', which werkzeug redirects to a single '/'.
    assert response.status_code in (200, 204, 308, 404, 405, 422), response.get_data()[:500]


@PROPERTY
@given(
    query=st.lists(
        st.tuples(
            st.sampled_from(["offset", "limit"]) | texts,
            st.integers(-(2**70), 2**70).map(str) | st.sampled_from(["0", "1048576", "1048577", "1.5"]) | texts,
        ),
        max_size=3,
    ),
    route=st.sampled_from(["/jobs/{job}/logs", "/schedules/{schedule}/runs"]),
)
def test_any_log_offset_and_run_limit(api, query, route):
    url = API + route.format(job=api.job_id, schedule=api.schedule_id)
    response = api.open("GET", url, query_string=query)
    assert response.status_code in (200, 422), response.get_data()[:500]


def test_cancel_then_read_a_job_never_errs(api):
    made = api.submit({"type": "add", "params": {"x": 5, "y": 6}})
    url = made.headers["Location"]
    assert api.open("DELETE", url).get_json()["status"] == "cancelled"
    assert api.open("DELETE", url).status_code == 200  # cancelling a cancelled job returns it unchanged
    logs = api.open("GET", f"{url}/logs", query_string={"offset": 2**62}).get_json()
    assert logs["complete"] and logs["data"] == ""
    assert api.open("GET", f"{url}/attempts").get_json() == []


def test_the_store_and_broker_folder_are_this_modules(api):
    """The invariants above compare this module's own store and broker folder: a valid submit shows in both."""
    before, messages = api.snapshot(), api.messages()
    made = api.submit({"type": "add", "params": {"x": 1, "y": 1}})
    after = api.snapshot()
    assert made.status_code == 202
    assert after[0][0] == before[0][0] + 1  # one more job
    [message] = api.messages() - messages
    assert Path(message).is_relative_to(api.base)
    assert datetime.fromisoformat(made.get_json()["created_at"]) <= datetime.now(UTC)
