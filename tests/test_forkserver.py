"""Fork servers (robotni/runner/forkserver.py): jobs of `isolation = "fork"` types, and the spawn server every job uses.

Runner-level tests with real processes (no Celery), then one job through HTTP on each stack.
"""

from __future__ import annotations

import json
import os
import pwd
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from robotni import process_spec
from robotni.errors import DeclarationError
from robotni.process_spec import Isolation
from robotni.runner import confinement, forkserver
from robotni.runner.run import RunSpec, run, script_argv
from robotni.status import JobStatus
from robotni.worktypes.registry import parse_type
from tests.stack import ROOT, alive, wait_until
from tests.test_registry import write
from tests.test_runner import GRANDCHILD, grandchild_of


@pytest.fixture(autouse=True)
def fresh_servers():
    """Each test starts its own servers, and none outlives it."""
    forkserver.stop_all()
    yield
    forkserver.stop_all()


def fork_spec(tmp_path: Path, code: str, params=None, args=(), preload=("json",), **overrides) -> RunSpec:
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    values = {"soft_limit": 10, "hard_limit": 12, "kill_grace": 1, "isolation": Isolation.FORK, **overrides}
    return RunSpec(
        argv=script_argv(sys.executable, script, list(args)),
        params=params if params is not None else {},
        workdir=tmp_path / "job",
        preload=tuple(preload),
        **values,
    )


def fork_server_pid() -> int:
    ((server,),) = forkserver._servers.values()
    return server.proc.pid


REPORT = """
import json, os, sys
params = json.load(sys.stdin)
report = {
    "params": params, "argv": sys.argv, "name": __name__, "file": __file__, "cwd": os.getcwd(),
    "env": dict(os.environ), "isolated": sys.flags.isolated, "session": os.getsid(0) == os.getpid(),
    "preloaded": "json" in sys.modules, "path": sys.path,
    "limits": {"nofile": __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)},
    "stdin_left": sys.stdin.read(),
}
json.dump(report, open(os.environ["ROBOTNI_RESULT"], "w"))
print("to stdout")
print("to stderr", file=sys.stderr)
"""


def test_fork_job_speaks_the_contract(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    spec = fork_spec(
        tmp_path, REPORT, {"x": 1}, args=["a b", "$(id)"], env={"ROBOTNI_JOB_ID": "j1"}, limits=process_spec.Limits()
    )
    outcome = run(spec)
    assert outcome.status is JobStatus.COMPLETED, outcome.error
    report = outcome.result
    assert report["params"] == {"x": 1} and report["stdin_left"] == ""
    assert report["argv"] == [str(tmp_path / "script.py"), "a b", "$(id)"]
    assert report["name"] == "__main__" and report["file"] == str(tmp_path / "script.py")
    assert report["cwd"] == str(spec.workdir / "scratch")
    assert report["env"]["ROBOTNI_JOB_ID"] == "j1" and report["env"]["ROBOTNI_RESULT"] == str(spec.result_path)
    assert "SECRET_TOKEN" not in report["env"]
    assert report["isolated"] == 1 and report["session"] and report["preloaded"]
    assert str(Path(forkserver.PROGRAM).parent) not in report["path"]  # Robotni's own folder is not on the job's path
    assert report["limits"]["nofile"] == [process_spec.DEFAULT_OPEN_FILES] * 2
    assert spec.log_path.read_text().splitlines() == ["to stdout", "to stderr"]
    assert fork_server_pid()  # it ran in the fork server, not as a process of its own


def test_exit_codes_and_tracebacks_are_the_scripts(tmp_path):
    failed = run(fork_spec(tmp_path / "a", "import sys\nprint('why', file=sys.stderr)\nsys.exit(3)"))
    assert failed.status is JobStatus.FAILED and failed.exit_code == 3 and failed.error.endswith("why")
    retry = run(fork_spec(tmp_path / "b", "raise SystemExit(75)"))
    assert retry.wants_retry
    message = run(fork_spec(tmp_path / "c", "raise SystemExit('a reason')"))
    assert message.exit_code == 1 and message.error.endswith("a reason")
    crashed = run(fork_spec(tmp_path / "d", "def boom():\n    1 / 0\nboom()"))
    assert crashed.exit_code == 1
    tail = crashed.error.split("\n", 1)[1]
    assert tail.startswith('Traceback (most recent call last):\n  File "' + str(tmp_path / "d" / "script.py"))
    assert "forkserver" not in tail and "ZeroDivisionError" in tail
    assert run(fork_spec(tmp_path / "e", "exit(0)")).status is JobStatus.COMPLETED  # site's builtins are there


def test_the_interpreter_ends_as_usual(tmp_path):
    """Non-daemon threads finish, atexit runs, files left open are flushed: the teardown a script can see."""
    code = """
    import atexit, os, threading, time
    atexit.register(lambda: print("atexit ran", flush=True))
    left_open = open("left-open.txt", "w")
    left_open.write("flushed")
    threading.Thread(target=lambda: (time.sleep(0.3), print("thread done", flush=True))).start()
    """
    spec = fork_spec(tmp_path, code)
    assert run(spec).status is JobStatus.COMPLETED
    assert spec.log_path.read_text() == "thread done\natexit ran\n"
    assert (spec.workdir / "scratch" / "left-open.txt").read_text() == "flushed"


def test_jobs_share_nothing_but_the_preloaded_imports(tmp_path):
    code = """
    import json, os, random, sys
    first = not hasattr(json, "touched")
    json.touched = True
    json.dump({"first": first, "random": random.random()}, open(os.environ["ROBOTNI_RESULT"], "w"))
    """
    one, two = run(fork_spec(tmp_path / "a", code)), run(fork_spec(tmp_path / "b", code))
    assert one.result["first"] and two.result["first"]
    assert one.result["random"] != two.result["random"]  # each child reseeds


def test_limits_apply(tmp_path):
    hog = "x = bytearray(300 * 1024 * 1024)"
    small = process_spec.Limits(memory_mb=200)
    outcome = run(fork_spec(tmp_path / "mem", hog, limits=small))
    assert outcome.status is JobStatus.FAILED and "MemoryError" in outcome.error
    spin = "while True:\n    pass"
    outcome = run(
        fork_spec(tmp_path / "cpu", spin, limits=process_spec.Limits(cpu_seconds=1), soft_limit=20, hard_limit=25)
    )
    assert outcome.status is JobStatus.FAILED and "cpu_seconds" in outcome.error
    code = "import resource, os\nopen('big', 'wb').write(b'x' * 3 * 1024 * 1024)"
    outcome = run(fork_spec(tmp_path / "fsize", code, limits=process_spec.Limits(file_size_mb=1)))
    assert outcome.status is JobStatus.FAILED and "File too large" in outcome.error


def test_soft_limit_and_cancel_kill_the_whole_group(tmp_path):
    spec = fork_spec(tmp_path / "t", GRANDCHILD, soft_limit=1, hard_limit=2)
    assert run(spec).status is JobStatus.TIMED_OUT
    wait_until(lambda: not alive(grandchild_of(spec)), 5, "the grandchild to die")

    spec = fork_spec(tmp_path / "c", GRANDCHILD)
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    assert run(spec, cancel=cancel).status is JobStatus.CANCELLED
    wait_until(lambda: not alive(grandchild_of(spec)), 5, "the grandchild to die")


def test_a_fork_server_that_dies_fails_only_its_job_and_is_replaced(tmp_path):
    code = "import time\nprint('up', flush=True)\ntime.sleep(30)"
    spec = fork_spec(tmp_path / "a", code)
    threading.Timer(1.0, lambda: os.kill(fork_server_pid(), signal.SIGKILL)).start()
    outcome = run(spec)
    assert outcome.status is JobStatus.FAILED and "fork server died" in outcome.error
    after = run(fork_spec(tmp_path / "b", "print('fine')"))
    assert after.status is JobStatus.COMPLETED
    assert fork_server_pid()  # a new one


def test_jobs_at_once_each_have_a_server_of_their_own(tmp_path):
    """A threads pool runs jobs of a type at once: each is handed an idle server of its own, warmed beforehand."""
    code = "import json, os, time\ntime.sleep(1)\njson.dump(os.getppid(), open(os.environ['ROBOTNI_RESULT'], 'w'))"
    specs = [fork_spec(tmp_path / name, code) for name in ("a", "b")]
    forkserver.warm(specs[0].argv[:3], specs[0].preload, 2)
    ((first, second),) = forkserver._servers.values()
    with ThreadPoolExecutor(2) as threads:
        outcomes = list(threads.map(run, specs))
    assert sorted(outcome.result for outcome in outcomes) == sorted([first.proc.pid, second.proc.pid])
    assert [len(servers) for servers in forkserver._servers.values()] == [2]  # both idle again, none started


def test_a_preload_that_fails_falls_back_to_a_process(tmp_path, caplog):
    code = "import json, os, sys\njson.dump(sys.argv[0], open(os.environ['ROBOTNI_RESULT'], 'w'))"
    outcome = run(fork_spec(tmp_path, code, preload=("robotni_no_such_module",)))
    assert outcome.status is JobStatus.COMPLETED
    assert "preload 'robotni_no_such_module' failed" in caplog.text
    assert not any(forkserver._servers.values())


@pytest.mark.parametrize("util_linux", [True, False])
def test_process_jobs_are_the_runners_children_with_or_without_util_linux(tmp_path, monkeypatch, util_linux):
    """setpriv and prlimit set a job up when they are there (subprocess can vfork), a preexec_fn otherwise."""
    if util_linux and confinement._util_linux() is None:
        pytest.skip("util-linux's setpriv and prlimit are not installed")
    if not util_linux:
        monkeypatch.setattr(confinement, "_util_linux", lambda: None)
    code = "import json, os, resource\njson.dump([os.getppid(), resource.getrlimit(resource.RLIMIT_NOFILE)], open(os.environ['ROBOTNI_RESULT'], 'w'))"
    spec = fork_spec(tmp_path, code, isolation=Isolation.PROCESS, limits=process_spec.Limits(open_files=77))
    assert run(spec).result == [os.getpid(), [77, 77]]


@pytest.mark.parametrize("isolation", list(Isolation))
def test_the_params_on_stdin_cannot_be_changed(tmp_path, isolation):
    """stdin is a sealed in-memory file: no file per job, and nothing the job could write to."""
    code = """
    import json, os, sys
    try:
        os.write(0, b"x")
        wrote = "yes"
    except OSError as exc:
        wrote = exc.strerror
    json.dump([json.load(sys.stdin), wrote], open(os.environ["ROBOTNI_RESULT"], "w"))
    """
    spec = fork_spec(tmp_path, code, {"big": "x" * 300_000}, isolation=isolation)
    outcome = run(spec)
    assert outcome.result == [{"big": "x" * 300_000}, "Operation not permitted"], outcome.error
    assert sorted(p.name for p in spec.workdir.iterdir()) == ["out", "scratch"]  # silent: no log file either


def test_an_interpreter_that_cannot_be_run_fails_the_job_saying_so(tmp_path):
    spec = fork_spec(tmp_path, "pass", isolation=Isolation.PROCESS, limits=process_spec.Limits())
    missing = tmp_path / "python3"
    missing.write_bytes(b"\x7fELF not really")
    missing.chmod(0o644)  # not executable: exec fails with EACCES in whatever sets the job up
    spec = RunSpec(**{**vars(spec), "argv": [str(missing), *spec.argv[1:]]})
    outcome = run(spec)
    assert outcome.status is JobStatus.FAILED
    assert outcome.error.startswith(f"cannot start {missing}: ") and "Permission denied" in outcome.error


POOL = """
import sys, threading
from pathlib import Path
from robotni.runner.run import RunSpec, run, script_argv
from robotni.process_spec import Isolation
work = Path(sys.argv[1])
spec = RunSpec(argv=script_argv(sys.executable, work / "script.py"), params={}, workdir=work / "job", soft_limit=60,
               hard_limit=70, isolation=Isolation(sys.argv[2]))
run(spec)
"""


@pytest.mark.parametrize("isolation", ["fork", "process"])
def test_jobs_die_with_their_pool_process(tmp_path, isolation):
    """SIGKILL to the process that runs the runner: its server dies, and the job with it."""
    (tmp_path / "script.py").write_text(
        "import json, os, time\njson.dump(os.getpid(), open('pid', 'w'))\ntime.sleep(60)"
    )
    pool = subprocess.Popen([sys.executable, "-c", POOL, str(tmp_path), isolation], cwd=ROOT)
    try:
        pid_file = tmp_path / "job" / "scratch" / "pid"
        wait_until(lambda: pid_file.exists() and pid_file.read_text(), 20, "the job to start")
        job = json.loads(pid_file.read_text())
        assert alive(job)
    finally:
        pool.kill()
        pool.wait()
    wait_until(lambda: not alive(job), 5, "the job to die with its pool process")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_fork_jobs_run_as_the_job_user():
    base = Path(tempfile.mkdtemp(prefix="robotni-forkserver-"))
    try:
        base.chmod(0o755)
        python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
        subprocess.run([python, "-m", "venv", "--without-pip", str(base / "py")], check=True)
        code = "import json, os\njson.dump([os.getuid(), os.getgid(), os.getgroups()], open(os.environ['ROBOTNI_RESULT'], 'w'))"
        script = base / "script.py"
        script.write_text(code)
        script.chmod(0o644)
        user = confinement.job_user("nobody")
        spec = RunSpec(
            argv=script_argv(str(base / "py" / "bin" / "python"), script),
            params={},
            workdir=base / "job",
            soft_limit=10,
            hard_limit=12,
            user=user,
            limits=process_spec.Limits(),
            isolation=Isolation.FORK,
        )
        outcome = run(spec)
        assert outcome.status is JobStatus.COMPLETED, outcome.error
        assert outcome.result == [user.uid, user.gid, []]
        nobody = pwd.getpwnam("nobody")
        assert os.stat(spec.workdir / "scratch").st_uid == nobody.pw_uid
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_declarations(tmp_path):
    fast = parse_type(write(tmp_path, "fast", '[tool.robotni]\nisolation = "fork"\npreload = ["json", "email.parser"]'))
    assert fast.isolation is Isolation.FORK and fast.preload == ("json", "email.parser")
    assert parse_type(write(tmp_path, "plain", "[tool.robotni]")).isolation is Isolation.PROCESS
    for bad, reason in (
        ('isolation = "thread"', "isolation must be"),
        ('preload = ["json"]', "preload needs isolation"),
        ('isolation = "fork"\npreload = ["os; rm -rf /"]', "module names"),
        ('isolation = "fork"\npreload = "json"', "module names"),
    ):
        with pytest.raises(DeclarationError, match=reason):
            parse_type(write(tmp_path, "bad", f"[tool.robotni]\n{bad}"))


def test_resource_limits_default_to_the_workers_hard_limits():
    """The runner hands the server limits it computed in the worker; the server applies them unchanged."""
    triples = process_spec.Limits().rlimits()
    assert all(hard == resource.RLIM_INFINITY or soft <= hard for _, soft, hard in triples)


def test_a_forked_type_through_http(stack):
    job = stack.wait_for(stack.submit("forked", {"x": 20, "y": 22})["id"])
    assert job["status"] == "completed", job
    assert job["result"] == {"sum": 42, "preloaded": True}
    logs = stack.http.get(stack.api(f"/jobs/{job['id']}/logs")).json()
    assert logs["data"] == "adding\n"
    types = stack.http.get(stack.api("/types")).json()
    forked = next(t for t in types if t["name"] == "forked")
    assert forked["isolation"] == "fork" and forked["preload"] == ["json", "decimal"]
