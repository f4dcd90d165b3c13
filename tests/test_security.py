"""Security and bad input, through HTTP with real workers: tokens and scopes, CORS, limits, job sandbox, no pickle."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from robotni import tokens
from robotni.config import settings
from robotni.errors import ConfigError
from robotni.flower import command as flower_command
from robotni.webhooks.signing import new_secret
from tests.stack import Stack, free_port, running_stack, wait_until

ADMIN = "admin-token-" + "a" * 20
SHOP = "shop-token-" + "s" * 20
BOTH = "both-token-" + "b" * 20
ORIGIN = "https://app.example.com"
ROOT = Path(__file__).resolve().parent.parent
AS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not AS_ROOT, reason="switching jobs to another user needs a root worker")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Evil:
    """Unpickling this runs a shell command: what a pickle-accepting worker would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def base():
    """Not under pytest's 0700 temp folder: the job user must reach the workers folder and its scratch folder."""
    folder = Path(tempfile.mkdtemp(prefix="robotni-security-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def job_python_venv(venvs: Path) -> None:
    """A venv whose interpreter the job user can run (a Python under /root is closed to nobody)."""
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    subprocess.run([python, "-m", "venv", "--without-pip", str(venvs / "jobpy")], check=True)


@pytest.fixture(scope="module")
def secured_stack(base):
    """Tokens, CORS, jobs as nobody (the default for a root worker), a poisoned worker environment."""
    (base / "inject").mkdir()
    (base / "inject" / "sitecustomize.py").write_text(
        f"import os\nif 'ROBOTNI_JOB_ID' in os.environ:\n    open({str(base / 'injected')!r}, 'w').close()\n"
    )
    env = {
        "ROBOTNI_API_TOKENS": f"{ADMIN}:*;{SHOP}:shop;{BOTH}:shop,blog",
        "ROBOTNI_CORS_ORIGINS": ORIGIN,
        "ROBOTNI_JOB_USER": "",
        "PYTHONPATH": str(base / "inject"),
        "LD_PRELOAD": "/nonexistent/evil.so",
    }
    with running_stack(base / "main", env) as running:
        job_python_venv(running.data_dir / "venvs")
        running.http.headers.update(bearer(ADMIN))
        yield running


def run_job(secured_stack: Stack, type: str, params: dict, **fields) -> dict:
    job = secured_stack.submit(type, params, venv="jobpy", **fields)
    return secured_stack.wait_for(job["id"])


# --- tokens and scopes ------------------------------------------------------------------------------------


def test_missing_or_wrong_token_is_401_and_probes_need_none(secured_stack):
    for headers in ({}, bearer("wrong-token-" + "x" * 20), {"Authorization": f"Basic {ADMIN}"}):
        response = requests.get(secured_stack.api("/jobs"), headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["code"] == 401
    response = requests.post(secured_stack.api("/jobs"), json={"type": "add", "params": {"x": 1, "y": 2}})
    assert response.status_code == 401
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert requests.get(secured_stack.url + path).status_code == 200, path


def test_scoped_token_sees_and_submits_only_its_projects(secured_stack):
    blog = secured_stack.submit("add", {"x": 1, "y": 2}, project="blog")
    shop = requests.post(
        secured_stack.api("/jobs"),
        headers=bearer(SHOP),
        json={"type": "add", "params": {"x": 1, "y": 1}, "project": "shop"},
    )
    assert shop.status_code == 202, shop.text
    shop = shop.json()
    refused = requests.post(
        secured_stack.api("/jobs"),
        headers=bearer(SHOP),
        json={"type": "add", "params": {"x": 1, "y": 1}, "project": "blog"},
    )
    assert refused.status_code == 403 and "blog" in refused.json()["message"]
    # Default project "default" is outside the shop token too.
    assert (
        requests.post(
            secured_stack.api("/jobs"), headers=bearer(SHOP), json={"type": "add", "params": {"x": 1, "y": 1}}
        ).status_code
        == 403
    )

    # Another project's job is not found (404, not 403: ids of other projects are not confirmed).
    for method, path in (("get", ""), ("delete", ""), ("get", "/logs"), ("get", "/attempts")):
        response = requests.request(method, secured_stack.api(f"/jobs/{blog['id']}{path}"), headers=bearer(SHOP))
        assert response.status_code == 404, (method, path, response.text)
    assert requests.get(secured_stack.api(f"/jobs/{shop['id']}"), headers=bearer(SHOP)).status_code == 200

    listed = requests.get(secured_stack.api("/jobs"), headers=bearer(SHOP)).json()["jobs"]
    assert listed and {j["project"] for j in listed} == {"shop"}
    assert requests.get(secured_stack.api("/jobs?project=blog"), headers=bearer(SHOP)).json()["jobs"] == []
    both = requests.get(secured_stack.api("/jobs?project=blog&project=shop"), headers=bearer(BOTH)).json()["jobs"]
    assert {j["id"] for j in both} >= {blog["id"], shop["id"]}
    everything = secured_stack.http.get(secured_stack.api("/jobs")).json()["jobs"]
    assert {j["id"] for j in everything} >= {blog["id"], shop["id"]}


def test_whoami_says_which_projects_a_token_covers(secured_stack):
    assert requests.get(secured_stack.api("/whoami")).status_code == 401
    scoped = requests.get(secured_stack.api("/whoami"), headers=bearer(BOTH)).json()
    assert scoped == {"token_required": True, "projects": ["blog", "shop"]}
    assert secured_stack.http.get(secured_stack.api("/whoami")).json() == {"token_required": True, "projects": None}


def test_machine_views_are_for_all_project_tokens_and_queue_ops_are_scoped(secured_stack):
    assert requests.get(secured_stack.api("/status"), headers=bearer(SHOP)).status_code == 403
    assert secured_stack.http.get(secured_stack.api("/status")).status_code == 200
    assert requests.get(secured_stack.api("/types"), headers=bearer(SHOP)).status_code == 200

    waiting_blog = secured_stack.submit("parked", project="blog")
    waiting_shop = secured_stack.submit("parked", project="shop")
    queue = requests.get(secured_stack.api("/queue"), headers=bearer(SHOP)).json()
    assert {j["project"] for j in queue["pending"]} == {"shop"}

    flush = requests.post(secured_stack.api("/queue/flush"), headers=bearer(SHOP), json={"project": ["blog"]})
    assert flush.status_code == 403
    flush = requests.post(secured_stack.api("/queue/flush"), headers=bearer(SHOP), json={})
    assert flush.status_code == 200 and flush.json()["cancelled"] >= 1
    assert secured_stack.job(waiting_shop["id"])["status"] == "cancelled"
    assert secured_stack.job(waiting_blog["id"])["status"] == "queued"
    secured_stack.http.delete(secured_stack.api(f"/jobs/{waiting_blog['id']}"))


def test_schedules_are_scoped_like_jobs(secured_stack):
    body = {
        "name": "blog-nightly",
        "type": "add",
        "params": {"x": 1, "y": 2},
        "project": "blog",
        "interval_seconds": 3600,
    }
    blog = secured_stack.http.post(secured_stack.api("/schedules"), json={**body, "enabled": False})
    assert blog.status_code == 201, blog.text
    blog_id = blog.json()["id"]
    shop = requests.post(
        secured_stack.api("/schedules"),
        headers=bearer(SHOP),
        json={**body, "name": "shop-hourly", "project": "shop", "enabled": False},
    )
    assert shop.status_code == 201, shop.text
    assert (
        requests.post(
            secured_stack.api("/schedules"), headers=bearer(SHOP), json={**body, "name": "sneaky"}
        ).status_code
        == 403
    )
    listed = requests.get(secured_stack.api("/schedules"), headers=bearer(SHOP)).json()
    assert [s["project"] for s in listed] == ["shop"]
    for method, path in (("get", ""), ("delete", ""), ("patch", ""), ("post", "/enable"), ("get", "/runs")):
        response = requests.request(
            method,
            secured_stack.api(f"/schedules/{blog_id}{path}"),
            headers=bearer(SHOP),
            json={} if method == "patch" else None,
        )
        assert response.status_code == 404, (method, path, response.text)
    moved = requests.patch(
        secured_stack.api(f"/schedules/{shop.json()['id']}"), headers=bearer(SHOP), json={"project": "blog"}
    )
    assert moved.status_code == 403


def test_tokens_are_never_logged_or_printed(secured_stack):
    requests.get(secured_stack.api("/jobs"), headers=bearer(SHOP))
    requests.get(secured_stack.api("/jobs"), headers=bearer("wrong-token-" + "x" * 20))
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "robotni"), "config"],
        env=secured_stack.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "ROBOTNI_API_TOKENS" in shown
    for text in [shown, *(p.log() for p in secured_stack.processes)]:
        for token in (ADMIN, SHOP, BOTH):
            assert token not in text


# --- CORS ---------------------------------------------------------------------------------------------------


def test_cors_allows_only_the_configured_origin_without_credentials(secured_stack):
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    response = requests.options(secured_stack.api("/jobs"), headers=preflight)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in response.headers

    response = requests.get(secured_stack.api("/jobs"), headers={"Origin": ORIGIN, **bearer(SHOP)})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN and "Origin" in response.headers["Vary"]
    assert "Location" in response.headers["Access-Control-Expose-Headers"]
    # The page can read a refusal too, but a refusal it stays.
    assert requests.get(secured_stack.api("/jobs"), headers={"Origin": ORIGIN}).status_code == 401

    for origin in ("https://evil.example.com", "https://app.example.com.evil.net", "null"):
        response = requests.options(secured_stack.api("/jobs"), headers={**preflight, "Origin": origin})
        assert "Access-Control-Allow-Origin" not in response.headers, origin


# --- paths, environment, pickle -----------------------------------------------------------------------------


def test_unsafe_paths_and_names_are_refused_and_nothing_runs(secured_stack):
    scripts = secured_stack.data_dir / "scripts"
    scripts.mkdir(exist_ok=True)
    (scripts / "out").symlink_to("/etc")
    (scripts / "link.py").symlink_to("/etc/hostname")
    before = len(secured_stack.http.get(secured_stack.api("/jobs?limit=500")).json()["jobs"])
    for script in ("../x.py", "/etc/passwd", "a/../../x.py", "ok\x00.py", "x" * 5000, "out/hostname", "link.py"):
        response = secured_stack.http.post(
            secured_stack.api("/jobs"), json={"type": "python-script", "params": {"script": script}}
        )
        assert response.status_code == 422, (script, response.text)
    for venv in ("../jobpy", "/usr", "a" * 200, "job\x00py", "."):
        response = secured_stack.http.post(
            secured_stack.api("/jobs"), json={"type": "add", "params": {"x": 1, "y": 2}, "venv": venv}
        )
        assert response.status_code == 422, (venv, response.text)
    for project in ("../shop", "a" * 300, "", "sh op"):
        response = secured_stack.http.post(
            secured_stack.api("/jobs"), json={"type": "add", "params": {"x": 1, "y": 2}, "project": project}
        )
        assert response.status_code == 422, (project, response.text)
    assert len(secured_stack.http.get(secured_stack.api("/jobs?limit=500")).json()["jobs"]) == before


def test_worker_environment_cannot_be_injected_into_a_job(secured_stack, base):
    response = secured_stack.http.post(
        secured_stack.api("/jobs"), json={"type": "prober", "params": {}, "env": {"LD_PRELOAD": "/x.so"}}
    )
    assert response.status_code == 422  # no such field: a client cannot pass environment variables
    job = run_job(secured_stack, "prober", {})
    assert job["status"] == "completed", job
    report = job["result"]
    allowed = {"PATH", "LANG", "HOME", "TMPDIR", "ROBOTNI_RESULT", "ROBOTNI_PROGRESS", "ROBOTNI_JOB_ID"}
    allowed |= {"ROBOTNI_JOB_TYPE", "ROBOTNI_PROJECT", "ROBOTNI_ATTEMPT", "LC_CTYPE"}
    assert set(report["env"]) <= allowed, report["env"]
    assert report["isolated"] == 1 and str(base / "inject") not in report["path"]
    assert not (base / "injected").exists()  # the worker's PYTHONPATH sitecustomize never ran in the job


def test_pickle_message_is_refused_and_the_worker_stays_healthy(secured_stack, base):
    marker = base / "pickled"
    publish = textwrap.dedent(
        f"""
        import uuid
        from robotni.celery import app
        queue = app.amqp.queues["default"]
        body = bytes.fromhex({pickle.dumps(((Evil(marker),), {}, {})).hex()!r})
        task_id = str(uuid.uuid4())
        with app.connection_for_write() as conn:
            conn.Producer().publish(
                body, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue],
                content_type="application/x-python-serialize", content_encoding="binary",
                headers={{"lang": "py", "task": "robotni.run_job", "id": task_id, "root_id": task_id}},
            )
        """
    )
    sys_path = f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
    subprocess.run([sys.executable, "-c", sys_path + publish], env=secured_stack.env, check=True, timeout=60)
    worker = secured_stack.processes[-1]
    wait_until(lambda: "pickle" in worker.log(), 15, "the worker to refuse the pickle message")
    assert not marker.exists()
    assert worker.popen.poll() is None
    assert run_job(secured_stack, "add", {"x": 2, "y": 3})["result"] == {"sum": 5}


def test_results_are_stored_as_json(secured_stack):
    job = run_job(secured_stack, "add", {"x": 4, "y": 5})
    with sqlite3.connect(secured_stack.data_dir / "robotni.db") as db:
        (raw,) = db.execute("SELECT result FROM jobs WHERE id = ?", (job["id"],)).fetchone()
    assert json.loads(raw) == {"sum": 9}


# --- the job process: user, files, limits -------------------------------------------------------------------


@needs_root
def test_job_runs_as_nobody_and_cannot_touch_the_store_the_broker_or_other_jobs(secured_stack):
    other = run_job(secured_stack, "add", {"x": 1, "y": 1})
    data, other_dir = secured_stack.data_dir, secured_stack.data_dir / "jobs" / other["id"]
    protected = [
        data / "robotni.db",
        data / "robotni.db-wal",
        data / "broker" / "queue" / "planted.msg",
        data / "planted",
        other_dir / "output.log",
        other_dir / "scratch" / "planted",
        other_dir / "out" / "result.json",
    ]
    job = run_job(
        secured_stack,
        "prober",
        {
            "write": [str(p) for p in protected],
            "read": [str(data / "robotni.db")],
            "list": [str(data), str(data / "jobs"), str(data / "broker")],
        },
    )
    assert job["status"] == "completed", job
    report = job["result"]
    assert report["uid"] == 65534 and report["cwd"].endswith("/scratch")
    assert {p: r for p, r in report["write"].items() if r == "ok"} == {}
    assert report["read"][str(data / "robotni.db")] == "PermissionError"
    assert set(report["list"].values()) == {"PermissionError"}
    own = run_job(secured_stack, "prober", {"write": ["own-scratch-file"]})
    assert own["result"]["write"] == {"own-scratch-file": "ok"}


@needs_root
def test_a_data_folder_is_made_for_the_job_user_alone(secured_stack):
    """A type's `data_folder` (backup-export's backups/): the job user's, 0700, inside the closed data folder."""
    job = run_job(secured_stack, "archivist", {})
    assert job["status"] == "completed", job
    folder = secured_stack.data_dir / "archive"
    assert job["result"]["folder"] == str(folder) and (folder / job["id"]).read_text() == "kept"
    assert (folder.stat().st_uid, folder.stat().st_mode & 0o777) == (job["result"]["uid"], 0o700) == (65534, 0o700)
    assert not {"ROBOTNI_API_URL", "ROBOTNI_API_TOKEN"} & set(job["result"]["env"])  # it did not ask for the API


@needs_root
def test_a_result_symlink_is_not_followed(secured_stack):
    job = run_job(secured_stack, "prober", {"symlink_result_to": str(secured_stack.data_dir / "robotni.db")})
    assert job["status"] == "failed" and "result.json" in job["error"]
    assert job["result"] is None


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("memory", "MemoryError"),
        ("cpu", "CPU time limit"),
        ("fsize", "File too large"),  # Python ignores SIGXFSZ: the write fails with EFBIG
        ("files", "Too many open files"),
    ],
)
def test_a_job_over_its_limits_fails_alone(secured_stack, mode, error):
    job = run_job(secured_stack, "hog", {"mode": mode})
    assert job["status"] == "failed" and error in job["error"], job
    assert secured_stack.processes[-1].popen.poll() is None
    assert run_job(secured_stack, "add", {"x": 1, "y": 2})["status"] == "completed"


@needs_root
def test_a_fork_bomb_kills_only_its_job(secured_stack):
    job = run_job(secured_stack, "hog", {"mode": "fork"})
    assert job["status"] == "failed" and job["exit_code"] == 3, job
    log = secured_stack.http.get(secured_stack.api(f"/jobs/{job['id']}/logs")).json()["data"]
    assert "fork refused after" in log
    pids = (secured_stack.data_dir / "jobs" / job["id"] / "scratch" / "children.txt").read_text().split()
    assert 0 < len(pids) < 32

    def all_gone():
        alive = []
        for pid in map(int, pids):
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        return not alive

    wait_until(all_gone, 10, "the bomb's children to be killed")
    assert secured_stack.processes[-1].popen.poll() is None
    assert run_job(secured_stack, "add", {"x": 1, "y": 2})["result"] == {"sum": 3}


def test_types_show_their_limits(secured_stack):
    types = {t["name"]: t for t in secured_stack.http.get(secured_stack.api("/types")).json()}
    assert types["hog"]["limits"] == {
        "memory_mb": 256,
        "cpu_seconds": 1,
        "file_size_mb": 1,
        "open_files": 64,
        "processes": 32,
    }
    assert types["add"]["limits"]["memory_mb"] == 2048 and types["add"]["limits"]["processes"] == 256


# --- rate, waiting cap and loopback, on a web server alone ---------------------------------------------------


@pytest.fixture(scope="module")
def web_only(base):
    env = {
        "ROBOTNI_API_TOKENS": f"{ADMIN}:*;{SHOP}:shop",
        "ROBOTNI_RATE_PER_SECOND": "2",
        "ROBOTNI_RATE_BURST": "5",
        "ROBOTNI_MAX_WAITING_PER_PROJECT": "3",
    }
    running = Stack(base / "web-only", env)
    try:
        running.start_web()
        yield running
    finally:
        running.stop()


def test_rate_limit_is_per_token_with_retry_after(web_only):
    codes = [requests.get(web_only.api("/types"), headers=bearer(SHOP)) for _ in range(30)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited and all(r.status_code in (200, 429) for r in codes)
    assert int(limited[0].headers["Retry-After"]) >= 1 and limited[0].json()["code"] == 429
    assert requests.get(web_only.api("/types"), headers=bearer(ADMIN)).status_code == 200  # another token's bucket
    assert requests.get(web_only.url + "/healthz").status_code == 200


def test_waiting_jobs_per_project_are_capped(web_only):
    def submit(project: str) -> requests.Response:
        """Past the rate limit (2/s here): a 429 of the rate kind is retried after its Retry-After."""
        body = {"type": "add", "params": {"x": 1, "y": 2}, "project": project}

        def attempt():
            response = requests.post(web_only.api("/jobs"), headers=bearer(ADMIN), json=body)
            return [response] if response.status_code != 429 or "waiting" in response.json()["message"] else None

        return wait_until(attempt, 10, "a submit past the rate limit", every=0.5)[0]  # a Response is falsy on 4xx

    for _ in range(3):
        assert submit("capped").status_code == 202
    refused = submit("capped")
    assert refused.status_code == 429 and "at most 3" in refused.json()["message"]
    assert submit("other").status_code == 202


def test_without_tokens_only_loopback_is_served(tmp_path):
    """The non-loopback peer is simulated in-process: tests may only send traffic to loopback addresses."""
    script = textwrap.dedent(
        """
        import json
        from robotni.api.app import create_app
        client = create_app().test_client()
        far, near = {"REMOTE_ADDR": "203.0.113.9"}, {"REMOTE_ADDR": "127.0.0.1"}
        print(json.dumps([
            client.get("/api/worker/types", environ_base=far).status_code,
            client.get("/healthz", environ_base=far).status_code,
            client.get("/api/worker/types", environ_base=near).status_code,
            client.get("/api/worker/types", environ_base={"REMOTE_ADDR": "::1"}).status_code,
            client.get("/api/worker/whoami", environ_base=near).get_json(),
        ]))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTNI_")}
    env.update(ROBOTNI_DATA_DIR=str(tmp_path / "var"), ROBOTNI_WORKERS_DIR=str(ROOT / "workers"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(done.stdout.splitlines()[-1]) == [
        403,
        200,
        200,
        200,
        {"token_required": False, "projects": None},
    ], done.stderr
    assert "loopback" in done.stderr  # said at start


def test_a_tokens_file_gives_named_tokens_their_own_callback_secret(tmp_path):
    path, secret, other = tmp_path / "tokens.json", new_secret(), new_secret()

    def parsed(*entries: dict) -> list[tokens.Token]:
        path.write_text(json.dumps(list(entries)))
        return tokens.parse_file(path)

    shop = {"name": "shop", "token": SHOP, "projects": ["shop"], "callback_secret": secret}
    renewed = {**shop, "token": BOTH}  # the same name and secret: an old and a new token of one shop
    assert [t.callback_secret for t in parsed(shop, renewed, {"token": ADMIN, "projects": "*"})] == [
        secret,
        secret,
        None,
    ]
    current = replace(settings(), api_tokens_file=path)
    assert tokens.callback_secret("shop", current) == secret and tokens.callback_secret("admin", current) is None
    for bad in ({**shop, "name": ""}, {**shop, "callback_secret": "whsec_c2hvcnQ="}, {**shop, "callback_secret": 42}):
        with pytest.raises(ConfigError) as refused:
            parsed(bad)
        assert secret not in str(refused.value)
    with pytest.raises(ConfigError, match="different callback_secret"):
        parsed(shop, {**renewed, "callback_secret": other})


# --- Flower ------------------------------------------------------------------------------------------------------


def test_flower_refuses_to_open_beyond_loopback_without_a_password(base):
    with pytest.raises(SystemExit, match="without a password"):
        flower_command("0.0.0.0:5555", "")
    with pytest.raises(SystemExit, match="without a password"):
        flower_command(":5555", "")
    argv, env = flower_command("0.0.0.0:5555", "ops:secret")
    assert env["FLOWER_BASIC_AUTH"] == "ops:secret" and "ops:secret" not in " ".join(argv)
    assert env["FLOWER_MAX_TASKS"] == "1000"  # not Flower's 100,000 tasks kept in memory
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROBOTNI_", "FLOWER_"))}
    env.update(ROBOTNI_DATA_DIR=str(base / "flower-var"), ROBOTNI_WORKERS_DIR=str(ROOT / "workers"))
    env.update(ROBOTNI_FLOWER_BIND=f"0.0.0.0:{free_port()}")
    done = subprocess.run([sys.executable, "-m", "robotni.flower"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "ROBOTNI_FLOWER_BASIC_AUTH" in done.stderr


def test_flower_with_basic_auth_asks_for_it(base):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROBOTNI_", "FLOWER_"))}
    env.update(
        ROBOTNI_DATA_DIR=str(base / "flower-var"),
        ROBOTNI_WORKERS_DIR=str(ROOT / "workers"),
        ROBOTNI_FLOWER_BIND=f"127.0.0.1:{port}",
        ROBOTNI_FLOWER_BASIC_AUTH="ops:s3cret-pass",
    )
    log = open(base / "flower.log", "wb")  # noqa: SIM115  closed below
    flower = subprocess.Popen(
        [sys.executable, "-m", "robotni.flower"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/"

    def answers():
        try:
            return [requests.get(url, timeout=1)]  # in a list: a Response is falsy on 4xx
        except requests.ConnectionError:
            return None

    try:
        (response,) = wait_until(answers, 30, f"flower on {url}\n{(base / 'flower.log').read_text()}", every=0.2)
        assert response.status_code == 401
        assert requests.get(url, auth=("ops", "wrong"), timeout=5).status_code == 401
        assert requests.get(url, auth=("ops", "s3cret-pass"), timeout=5).status_code == 200
    finally:
        os.killpg(flower.pid, signal.SIGKILL)
        flower.wait()
        log.close()
