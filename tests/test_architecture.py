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
NEVER_IN_THE_API = ("robotni.worker", "robotni.runner", "robotni.schedules.beat")


def test_create_app_loads_no_worker_runner_spawn_or_fork_server(tmp_path):
    env = {
        **os.environ,
        "ROBOTNI_DATA_DIR": str(tmp_path / "var"),
        "ROBOTNI_WORKERS_DIR": str(ROOT / "workers"),
        "ROBOTNI_LOG_FORMAT": "json",
    }
    done = subprocess.run(
        [sys.executable, "-c", LOADED], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert "robotni.api.jobs" in loaded  # the check looks at a real app
    leaked = [name for name in loaded if name.startswith(NEVER_IN_THE_API)]
    assert leaked == []
