"""Job throughput, latency and submit rate, printed as a markdown table: `python -m bench [--jobs N]`.

Runs on the embedded default and, when they answer on this machine, on Redis + PostgreSQL (URLs as in the
tests: ROBOTNI_TEST_REDIS_URL and ROBOTNI_TEST_POSTGRES_URL, defaulting to the standard local ports).
Everything talks to processes on this machine only, and every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from sqlalchemy import create_engine, func, select, update

os.environ.setdefault("ROBOTNI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
os.environ.setdefault("ROBOTNI_TEST_REDIS_URL", "redis://127.0.0.1:6379")

from robotni.db import Job
from tests import backends
from tests.stack import Stack, wait_until

# Settings a benchmark run may vary from the environment; everything else stays at its default.
PASSED_THROUGH = ("ROBOTNI_POLL_INTERVAL", "ROBOTNI_PREFETCH_MULTIPLIER")
BENCH_WORKERS = Path(__file__).resolve().parent / "workers"
SUBMITTERS = 8


def spawn_floor(runs: int, spawners: int = 2) -> tuple[float, float]:
    """Raw `python -I -c pass` from concurrent spawners: (per second, median ms of one spawn)."""

    def one(_):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-c", "pass"], check=True)
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(spawners) as pool:
        durations = list(pool.map(one, range(runs)))
    return runs / (time.perf_counter() - started), statistics.median(durations) * 1000


class Bench:
    """One stack (web + workers) on a temporary data folder, with direct read access to its job store."""

    def __init__(self, name: str, base: Path):
        self.backend = backends.provision(name) if name != "embedded" else backends.Backend(name)
        passed = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
        self.stack = Stack(base, {**passed, **self.backend.env})
        shutil.copy(BENCH_WORKERS / "noop.py", self.stack.workers_dir / "noop.py")
        url = self.backend.env.get("ROBOTNI_DATABASE_URL", f"sqlite:///{self.stack.data_dir / 'robotni.db'}")
        self.stack.start_web()
        self.db = create_engine(url)

    def one(self, query):
        with self.db.connect() as conn:
            return conn.execute(query).one()

    def completed(self, worker_prefix: str = "") -> int:
        query = select(func.count()).where(Job.status == "completed", Job.worker.like(f"{worker_prefix}%"))
        return self.one(query)[0]

    def submit_many(self, count: int) -> float:
        """Submits/s through the API from SUBMITTERS client threads, one HTTP session each."""
        local = threading.local()

        def one(_):
            if not hasattr(local, "session"):
                local.session = requests.Session()
            assert local.session.post(self.stack.api("/jobs"), json={"type": "noop"}).status_code == 202

        started = time.perf_counter()
        with ThreadPoolExecutor(SUBMITTERS) as pool:
            list(pool.map(one, range(count)))
        return count / (time.perf_counter() - started)

    def drain_rate(self, jobs: int, concurrency: int) -> float:
        """Jobs/s of one worker with `concurrency` pool processes draining a queue filled beforehand."""
        name = f"c{concurrency}@"
        self.submit_many(jobs)
        worker = self.stack.start_worker(name[:-1], concurrency=concurrency)
        wait_until(lambda: self.completed(name) >= jobs, 600, "the queue to drain", every=0.2)
        worker.stop()
        first, last = self.one(
            select(func.min(Job.started_at), func.max(Job.finished_at)).where(Job.worker.like(f"{name}%"))
        )
        return jobs / (last - first).total_seconds()

    def latencies(self, samples: int) -> list[float]:
        """Submit → completed in ms, from the job's own timestamps, one job at a time on an idle worker."""
        worker = self.stack.start_worker("lat", concurrency=2)
        values = []
        for _ in range(samples):
            job_id = self.stack.submit("noop")["id"]
            wait_until(lambda job_id=job_id: self.stack.job(job_id)["status"] == "completed", 30, "a job", every=0.005)
            created, finished = self.one(select(Job.created_at, Job.finished_at).where(Job.id == job_id))
            values.append((finished - created).total_seconds() * 1000)
        worker.stop()
        return values

    def close(self) -> None:
        self.stack.stop()
        self.db.dispose()
        self.backend.release()


def run_stack(name: str, jobs: int, samples: int, floor: float, spawn_ms: float) -> list[str]:
    base = Path(tempfile.mkdtemp(prefix=f"robotni-bench-{name}-"))
    bench = Bench(name, base)
    try:
        submits = bench.submit_many(jobs)
        with bench.db.begin() as conn:  # those were for the submit rate only; no worker should run them
            conn.execute(update(Job).where(Job.status == "queued").values(status="cancelled"))
        rates = {c: bench.drain_rate(jobs, c) for c in (1, 2, 4)}
        lat = bench.latencies(samples)
    finally:
        bench.close()
        shutil.rmtree(base, ignore_errors=True)
    p50, p99 = statistics.median(lat), statistics.quantiles(lat, n=100)[98]
    rows = [
        f"| {name} | no-op jobs/s, {c} pool process{'es' * (c > 1)} | {r:.1f} ({r / floor:.0%} of the floor) |"
        for c, r in rates.items()
    ]
    rows += [
        f"| {name} | submit → completed, median / p99 | {p50:.1f} / {p99:.1f} ms |",
        f"| {name} | latency overhead (median minus spawn median) | {p50 - spawn_ms:.1f} ms |",
        f"| {name} | submits/s through the API (gunicorn 2 workers, {SUBMITTERS} clients) | {submits:.0f} |",
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=400, help="jobs per throughput run")
    parser.add_argument("--samples", type=int, default=40, help="jobs for the latency run")
    parser.add_argument("--stacks", default="embedded,redis", help="comma-separated: embedded, redis")
    args = parser.parse_args()

    floor, spawn_ms = spawn_floor(300)
    rows = [f"| floor | `python -I -c pass`, 2 concurrent spawners | {floor:.1f}/s (median {spawn_ms:.1f} ms) |"]
    for name in args.stacks.split(","):
        try:
            rows += run_stack(name, args.jobs, args.samples, floor, spawn_ms)
        except Exception as exc:  # a stack whose servers are not running here is reported, not fatal
            rows.append(f"| {name} | not measured | {exc.__class__.__name__}: {exc} |")
    print(
        f"Machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d')}\n"
    )
    print("| stack | measure | value |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
