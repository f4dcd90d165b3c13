"""robotni.worker.orphan_sweep finds exactly the processes a job left behind when its runner died."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

from robotni.worker import orphan_sweep
from tests.stack import alive, wait_until

# A job that starts a child, says its pid, and waits: like tests/workers/sleeper.py, without a worker.
JOB = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def start_job(job_id: str) -> tuple[subprocess.Popen, int]:
    env = {"PATH": os.environ["PATH"], "ROBOTNI_JOB_ID": job_id}
    job = subprocess.Popen(
        [sys.executable, "-c", JOB], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    return job, int(job.stdout.readline())


def test_only_the_children_of_a_dead_job_are_orphans():
    dead, orphan = start_job("dead-job")
    live, child = start_job("live-job")
    try:
        dead.kill()  # what the parent-death signal does to a job whose pool process died
        dead.wait()
        assert wait_until(lambda: orphan_sweep.orphans().get(orphan), 5, "the orphan to be found") == "dead-job"
        assert child not in orphan_sweep.orphans() and live.pid not in orphan_sweep.orphans()
        assert orphan_sweep.kill_orphans() >= 1
        wait_until(lambda: not alive(orphan), 5, "the orphan to die")
        assert alive(child)
    finally:
        for pgid in (dead.pid, live.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        live.wait()
        for pipe in (dead.stdout, live.stdout):
            pipe.close()
