"""Real Robotni processes for tests: gunicorn, celery workers and beat on a temporary data folder."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
TEST_WORKERS = Path(__file__).resolve().parent / "workers"
TERMINAL = {"completed", "failed", "cancelled", "timed_out"}


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll predicate until it returns something truthy; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def scrape(stack: Stack) -> dict[str, dict]:
    """Every sample of /metrics as {sample name: {frozenset of label pairs: value}}."""
    response = requests.get(stack.url + "/metrics", timeout=10)  # a new connection: any gunicorn worker answers
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: dict[str, dict] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; only its parent (not us) can reap it.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def pids_of(stack: Stack, job_id: str) -> dict:
    """The pids a test script (sleeper, patient) wrote into its scratch folder."""
    path = stack.data_dir / "jobs" / job_id / "scratch" / "pids.json"
    return wait_until(lambda: path.exists() and json.loads(path.read_text()), 20, "the job's pids")


def default_job_user() -> str:
    """Robotni's default (nobody when root) where nobody can run this interpreter; else the current user.

    A Python under /root (pyenv on the development machines) is closed to nobody: jobs would all fail there.
    tests/test_security.py runs its jobs as nobody with an interpreter nobody can reach.
    """
    if os.geteuid() != 0:
        return ""
    nobody = pwd.getpwnam("nobody")
    probe = [sys.executable, "-I", "-c", "pass"]
    try:
        subprocess.run(probe, capture_output=True, check=True, user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
    except (OSError, subprocess.CalledProcessError):
        return "root"
    return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child in its own session, so stopping it stops everything it started."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT):
        self.name, self.log_path = name, log_path
        self._log = open(log_path, "ab")  # noqa: SIM115  closed in stop()
        self.popen = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 3) -> None:
        """SIGTERM to the main process (a warm stop); what is left after timeout is killed."""
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):  # what is left of the group: pool, jobs
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        self._log.close()


class Stack:
    def __init__(self, base: Path, extra_env: dict[str, str] | None = None, root: Path = ROOT):
        """root: the checkout whose `robotni` the processes run (they start in it); a benchmark compares two."""
        self.base, self.root = base, root
        self.data_dir = base / "var"
        self.workers_dir = base / "workers"
        self.workers_dir.mkdir(parents=True, exist_ok=True)
        for folder in (ROOT / "workers", TEST_WORKERS):
            for script in folder.glob("*.py"):
                shutil.copy(script, self.workers_dir / script.name)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOTNI_")}
        self.env.update(
            ROBOTNI_DATA_DIR=str(self.data_dir),
            ROBOTNI_WORKERS_DIR=str(self.workers_dir),
            ROBOTNI_KILL_GRACE="1",
        )
        self.env["ROBOTNI_JOB_USER"] = default_job_user()
        self.env.update(extra_env or {})
        self.processes: list[Process] = []
        self.url = ""
        self.http = requests.Session()

    def upgrade_schema(self) -> None:
        """What an operator does before starting a release on a server database (SQLite migrates itself)."""
        if "ROBOTNI_DATABASE_URL" in self.env:
            argv = [sys.executable, "-c", "from robotni.cli import main; main()", "db", "upgrade"]
            subprocess.run(argv, env=self.env, cwd=self.root, check=True, capture_output=True)

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        proc = Process(name, argv, {**self.env, **(env or {})}, self.base / f"{name}.log", self.root)
        self.processes.append(proc)
        return proc

    def start_web(self, args: Iterable[str] = ()) -> Process:
        """gunicorn as the Procfile runs it (2 workers); args go before the app, over the config's settings."""
        self.upgrade_schema()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:robotni.api.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
        ]
        argv += ["--workers", "2", *args]
        proc = self.spawn("web", [*argv, "robotni.api.app:create_app()"])
        wait_until(self._web_answers, 30, f"gunicorn on {self.url}\n{proc.log()}")
        return proc

    def _web_answers(self) -> bool:
        try:
            return self.http.get(self.url + "/healthz", timeout=5).ok
        except requests.RequestException:  # not listening yet, or still importing
            return False

    def start_worker(
        self,
        name: str = "w1",
        queues: Iterable[str] = ("default",),
        concurrency: int = 2,
        env: dict | None = None,
        pool: str | None = None,
    ):
        """As the Procfile starts it (`celery -A robotni worker` takes the same options: tests/test_schema.py); its
        pool ROBOTNI_WORKER_POOL's unless `pool` names one (Celery reads `--pool prefork` as "not given")."""
        argv = [sys.executable, "-m", "robotni.serve", "worker", "-Q", ",".join(queues)]
        argv += ["--pool", pool] if pool else []
        argv += [
            "-n",
            f"{name}@%h",
            "--concurrency",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
        ]
        proc = self.spawn(f"worker-{name}", [*argv, "--loglevel", "INFO"], env)
        wait_until(lambda: " ready." in proc.log(), 60, f"worker {name} ready\n{proc.log()}", every=0.1)
        return proc

    def start_webhooks_worker(self, name: str = "hooks") -> Process:
        """The Procfile's `webhooks` line: deliveries on their own queue, on threads."""
        return self.start_worker(name, queues=("webhooks",), concurrency=8, pool="threads")

    def start_beat(self, name: str = "beat", env: dict | None = None) -> Process:
        """celery beat as the Procfile runs it: the in-memory scheduler, so no schedule file is written."""
        argv = [sys.executable, "-m", "robotni.serve", "beat", "--scheduler", "celery.beat:Scheduler"]
        proc = self.spawn(name, [*argv, "--loglevel", "INFO"], env)
        wait_until(lambda: "beat: Starting..." in proc.log(), 60, f"{name} started\n{proc.log()}", every=0.1)
        return proc

    def stop(self) -> None:
        for proc in self.processes:  # all stop at once; each then gets its own deadline
            if proc.popen.poll() is None:
                proc.popen.send_signal(signal.SIGTERM)
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        self.http.close()

    # --- the API, as a client uses it -------------------------------------------------------------------

    def api(self, path: str) -> str:
        return f"{self.url}/api/worker{path}"

    def submit(self, type: str, params: dict | None = None, expect: int = 202, **fields: Any) -> dict:
        response = self.http.post(self.api("/jobs"), json={"type": type, "params": params or {}, **fields})
        assert response.status_code == expect, response.text
        return response.json()

    def job(self, job_id: str) -> dict:
        response = self.http.get(self.api(f"/jobs/{job_id}"))
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for(self, job_id: str, statuses: Iterable[str] = TERMINAL, timeout: float = 30) -> dict:
        wanted = set(statuses)
        return wait_until(
            lambda: (job := self.job(job_id))["status"] in wanted and job,
            timeout,
            f"job {job_id} to reach {sorted(wanted)}",
        )


@contextmanager
def running_stack(base: Path, env: dict[str, str] | None = None) -> Iterator[Stack]:
    """A Stack with gunicorn and one worker (2 pool slots) started, and stopped whatever happens."""
    stack = Stack(base, env)
    try:
        stack.start_web()
        stack.start_worker()
        yield stack
    finally:
        stack.stop()
