"""The layers hold at run time: the API process loads neither the worker nor the runner (import-linter checks the
source in `make lint`; this checks what a real `create_app()` imports, lazy imports included)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.stack import ROOT

LOADED = """
import json, sys
from robotni.api.app import create_app
create_app()
print(json.dumps(sorted(sys.modules)))
"""
# Celery's worker and beat machinery too: the API only publishes (robotni/broker/publish.py).
NEVER_IN_THE_API = ("robotni.worker", "robotni.runner", "robotni.schedules.beat", "celery.worker", "celery.beat")
# What a role's process loads as `python -m robotni.serve` starts it (the Procfile's lines), before its command runs.
ROLE_LOADED = """
import json, sys
from robotni import serve
command, app = serve.prepare(sys.argv[1])
app.loader.import_default_modules()
print(json.dumps(sorted(sys.modules)))
"""
# The `celery` program's REPL and plugins, and the migrations: no role needs them at run time.
NEVER_IN_A_ROLE = ("prompt_toolkit", "click_repl", "alembic", "mako", "flask")


def _env(tmp_path) -> dict[str, str]:
    return {
        **os.environ,
        "ROBOTNI_DATA_DIR": str(tmp_path / "var"),
        "ROBOTNI_WORKERS_DIR": str(ROOT / "workers"),
        "ROBOTNI_LOG_FORMAT": "json",
    }


def test_create_app_loads_no_worker_runner_spawn_or_fork_server(tmp_path):
    env = _env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", LOADED], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert "robotni.api.jobs" in loaded  # the check looks at a real app
    leaked = [name for name in loaded if name.startswith(NEVER_IN_THE_API)]
    assert leaked == []


def _role_loads(tmp_path, role: str) -> list[str]:
    argv = [sys.executable, "-c", ROLE_LOADED, role]
    done = subprocess.run(
        argv, env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_each_role_loads_its_own_modules_only(tmp_path):
    worker, beat = _role_loads(tmp_path, "worker"), _role_loads(tmp_path, "beat")
    assert {"robotni.worker.tasks", "robotni.worker.lifecycle"} <= set(worker) and "celery.apps.worker" in worker
    assert "robotni.schedules.beat" in beat
    assert [name for name in worker if name.startswith(("robotni.schedules.beat", "flower", "tornado"))] == []
    assert [name for name in beat if name.startswith(("robotni.worker", "robotni.runner", "flower", "tornado"))] == []
    assert [name for name in worker + beat if name.startswith(NEVER_IN_A_ROLE)] == []
