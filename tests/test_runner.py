"""The runner on its own: real processes, no Celery."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from robotni.errors import InterpreterError
from robotni.process_spec import check_interpreter
from robotni.runner.run import TRUNCATION_MARK, RunSpec, run, script_argv
from robotni.status import JobStatus
from tests.stack import alive, wait_until

GRANDCHILD = """
import json, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
json.dump({"grandchild": child.pid}, open("pids.json", "w"))
print("started", flush=True)
time.sleep(600)
"""


def make_spec(tmp_path: Path, code: str, params=None, args=(), **overrides) -> RunSpec:
    script = tmp_path / "script.py"
    script.write_text(code)
    values = {"soft_limit": 10, "hard_limit": 12, "kill_grace": 1, **overrides}
    return RunSpec(
        argv=script_argv(sys.executable, script, list(args)),
        params=params if params is not None else {},
        workdir=tmp_path / "job",
        **values,
    )


def grandchild_of(spec: RunSpec) -> int:
    return json.loads((spec.workdir / "scratch" / "pids.json").read_text())["grandchild"]


def test_success_reads_params_from_stdin_and_result_from_file(tmp_path):
    code = "import json, os, sys\np = json.load(sys.stdin)\njson.dump({'sum': p['x'] + p['y']}, open(os.environ['ROBOTNI_RESULT'], 'w'))\nprint('done')"
    spec = make_spec(tmp_path, code, {"x": 2, "y": 3})
    outcome = run(spec)
    assert outcome.status is JobStatus.COMPLETED
    assert outcome.result == {"sum": 5}
    assert outcome.exit_code == 0
    assert spec.log_path.read_text() == "done\n"


def test_failure_keeps_the_tail_of_stderr(tmp_path):
    code = "import sys\nprint('x' * 5000, file=sys.stderr)\nprint('the real reason', file=sys.stderr)\nsys.exit(4)"
    outcome = run(make_spec(tmp_path, code))
    assert outcome.status is JobStatus.FAILED
    assert outcome.exit_code == 4
    assert outcome.error.startswith("exit code 4")
    assert outcome.error.endswith("the real reason")
    assert len(outcome.error) < 2100


def test_invalid_result_json_fails_the_job(tmp_path):
    code = "import os\nopen(os.environ['ROBOTNI_RESULT'], 'w').write('{not json')"
    outcome = run(make_spec(tmp_path, code))
    assert outcome.status is JobStatus.FAILED
    assert "not valid JSON" in outcome.error


def test_soft_limit_kills_the_whole_group(tmp_path):
    spec = make_spec(tmp_path, GRANDCHILD, soft_limit=1, hard_limit=2)
    outcome = run(spec)
    assert outcome.status is JobStatus.TIMED_OUT
    assert "time limit" in outcome.error
    grandchild = grandchild_of(spec)
    wait_until(lambda: not alive(grandchild), 5, "the grandchild to die")


def test_hard_limit_kills_a_script_that_ignores_sigterm(tmp_path):
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(60)"
    outcome = run(make_spec(tmp_path, code, soft_limit=0.5, hard_limit=1.5))
    assert outcome.status is JobStatus.TIMED_OUT
    assert outcome.exit_code == -9


def test_cancel_kills_the_whole_group(tmp_path):
    spec = make_spec(tmp_path, GRANDCHILD)
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    outcome = run(spec, cancel=cancel)
    assert outcome.status is JobStatus.CANCELLED
    grandchild = grandchild_of(spec)
    wait_until(lambda: not alive(grandchild), 5, "the grandchild to die")


def test_background_grandchild_dies_when_the_script_exits(tmp_path):
    code = "import subprocess, sys, json\nc = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], stdout=subprocess.DEVNULL)\njson.dump({'grandchild': c.pid}, open('pids.json', 'w'))"
    spec = make_spec(tmp_path, code)
    assert run(spec).status is JobStatus.COMPLETED
    grandchild = grandchild_of(spec)
    wait_until(lambda: not alive(grandchild), 5, "the grandchild to die")


def test_output_is_capped_and_the_cut_is_marked(tmp_path):
    code = "import sys\nfor i in range(2000):\n    print('y' * 99)"
    spec = make_spec(tmp_path, code, log_max_bytes=10_000)
    outcome = run(spec)
    assert outcome.status is JobStatus.COMPLETED
    text = spec.log_path.read_text()
    assert text.startswith("y" * 99)
    assert text.endswith("[robotni: output truncated at 10000 bytes]\n")
    assert len(text) == 10_000 + len(TRUNCATION_MARK.format(10_000))


def test_environment_is_clean_and_isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "evil"))
    code = "import json, os, sys\njson.dump({'env': dict(os.environ), 'flags': sys.flags.isolated, 'path': sys.path}, open(os.environ['ROBOTNI_RESULT'], 'w'))"
    spec = make_spec(tmp_path, code)
    outcome = run(spec)
    env = outcome.result["env"]
    assert "SECRET_TOKEN" not in env
    assert "PYTHONPATH" not in env
    assert env["ROBOTNI_RESULT"] == str(spec.result_path)
    assert outcome.result["flags"] == 1
    assert str(tmp_path / "evil") not in outcome.result["path"]


def test_arguments_never_reach_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    code = "import json, os, sys\njson.dump(sys.argv[1:], open(os.environ['ROBOTNI_RESULT'], 'w'))"
    args = [f"; touch {marker}", f"$(touch {marker})"]
    outcome = run(make_spec(tmp_path, code, args=args))
    assert outcome.result == args
    assert not marker.exists()


def test_progress_reports_reach_the_callback(tmp_path):
    code = "import json, os, time\nfor i in (1, 2):\n    json.dump({'fraction': i / 2, 'message': f'step {i}'}, open(os.environ['ROBOTNI_PROGRESS'], 'w'))\n    time.sleep(0.3)"
    reports = []
    run(make_spec(tmp_path, code), on_progress=reports.append)
    assert reports[-1] == {"fraction": 1.0, "message": "step 2"}


def test_a_shim_interpreter_is_refused(tmp_path):
    shim = tmp_path / "python3"
    shim.write_text('#!/bin/sh\nexec python3 "$@"\n')
    shim.chmod(0o755)
    with pytest.raises(InterpreterError, match="shim"):
        check_interpreter(str(shim))
    with pytest.raises(InterpreterError, match="absolute"):
        check_interpreter("python3")
