"""A client generated from /openapi.json by openapi-python-client, as a new user would, drives the stack:
functions named by operationId, and a 422's field errors readable through the error schema."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GENERATOR = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))

DRIVE = """
import json, sys
from generated import Client
from generated.api.jobs import cancel_job, get_job, list_jobs, submit_job
from generated.models import Error, JobCreate, JobCreateParams

client = Client(base_url=sys.argv[1])
done = submit_job.sync(client=client, body=JobCreate(type_="helloworld", project="generated"))
slow = submit_job.sync(client=client, body=JobCreate(type_="sleeper", params=JobCreateParams.from_dict({"seconds": 30})))
refused = submit_job.sync(client=client, body=JobCreate(type_="add", params=JobCreateParams.from_dict({"a": "x"})))
print(json.dumps({
    "submitted": done.status,
    "got": get_job.sync(done.id, client=client).id == done.id,
    "listed": [job.id for job in list_jobs.sync(client=client, project=["generated"]).jobs] == [done.id],
    "cancelled": cancel_job.sync(slow.id, client=client).cancel_requested,
    "refused": isinstance(refused, Error) and refused.code == 422,
    "field_errors": refused.errors.to_dict(),
}))
"""


@pytest.mark.skipif(GENERATOR is None, reason="openapi-python-client is not installed (pip install -e '.[test]')")
def test_a_generated_client_submits_gets_lists_cancels_and_reads_errors(stack, tmp_path):
    spec = tmp_path / "openapi.json"
    spec.write_text(stack.http.get(stack.url + "/openapi.json").text)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    argv = [GENERATOR, "generate", "--path", str(spec), "--meta", "none", "--output-path", str(tmp_path / "generated")]
    subprocess.run(argv, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)
    run = subprocess.run(
        [sys.executable, "-c", DRIVE, stack.url], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["submitted"] == "queued" and seen["got"] and seen["listed"] and seen["cancelled"] is not None
    assert seen["refused"] and "a" in json.dumps(seen["field_errors"]["json"])
