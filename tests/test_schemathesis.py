"""Schemathesis against the live /openapi.json, with a token: no 5xx, and every response as documented."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
def stack(tmp_path_factory):
    env = {"ROBOTNI_API_TOKENS": f"{TOKEN}:*", "ROBOTNI_RATE_PER_SECOND": "10000", "ROBOTNI_RATE_BURST": "10000"}
    with running_stack(tmp_path_factory.mktemp("schemathesis"), env) as running:
        yield running


@pytest.mark.skipif(schemathesis_cli() is None, reason="schemathesis is in the test extra: pip install -e '.[test]'")
def test_live_api_matches_its_openapi_document(stack, tmp_path):
    argv = [
        schemathesis_cli(),
        "run",
        f"{stack.url}/openapi.json",
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
    web = next(p for p in stack.processes if p.name == "web").log()
    assert "Traceback" not in web, web[-5000:]
