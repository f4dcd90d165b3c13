"""Scale-out: worker hosts with their own names, queues and data folders on Redis + PostgreSQL."""

from __future__ import annotations

import signal

import pytest

from tests import backends
from tests.stack import Stack

pytestmark = pytest.mark.skipif(
    not (backends.POSTGRES and backends.REDIS), reason="set ROBOTNI_TEST_POSTGRES_URL and ROBOTNI_TEST_REDIS_URL"
)
# Fast beats: a killed host's leases expire in 3 s.
FAST = {"ROBOTNI_HEARTBEAT_SECONDS": "0.2"}


@pytest.fixture
def cluster(tmp_path):
    with backends.web_on("redis", tmp_path, FAST) as stack:
        yield stack


def host(stack: Stack, name: str, queues: tuple[str, ...]):
    """A worker 'machine': its own node name and data folder, sharing only the broker and the job store."""
    return stack.start_worker(name, queues, env={"ROBOTNI_DATA_DIR": str(stack.base / f"host-{name}")})


def test_killed_host_jobs_finish_on_the_other_and_gpu_queue_stays_on_its_host(cluster):
    gpu_host = host(cluster, "gpuhost", ("default", "gpu"))
    host(cluster, "cpuhost", ("default",))
    gpu_jobs = [cluster.submit("gpujob") for _ in range(4)]
    for job in gpu_jobs:
        done = cluster.wait_for(job["id"])
        assert done["status"] == "completed" and done["worker"].startswith("gpuhost@")
    long_jobs = [cluster.submit("patient", {"seconds": 4}) for _ in range(4)]
    on_gpu_host = [
        j for j in long_jobs if cluster.wait_for(j["id"], {"running", "completed"})["worker"].startswith("gpuhost@")
    ]
    assert on_gpu_host, "both hosts take default-queue jobs"
    gpu_host.signal(signal.SIGKILL)  # the whole host: main process, pool and (by PDEATHSIG) its jobs
    for job in long_jobs:
        done = cluster.wait_for(job["id"], timeout=40)
        assert done["status"] == "completed", done
        assert done["worker"].startswith("cpuhost@")
        # The API process has a data folder of its own: the output comes from the store, whichever host wrote it.
        output = cluster.http.get(cluster.api(f"/jobs/{job['id']}/logs")).json()
        assert f"attempt {done['attempts']}\n" in output["data"] and output["complete"], output
    stranded = cluster.submit("gpujob")
    assert cluster.job(stranded["id"])["status"] == "queued"  # no host serves `gpu` now; it waits, not lost
    host(cluster, "gpuhost2", ("gpu",))
    assert cluster.wait_for(stranded["id"], timeout=30)["worker"].startswith("gpuhost2@")
