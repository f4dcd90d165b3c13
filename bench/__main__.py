"""Robotni, its peers and the floor, everything in one run: `python -m bench` (`make bench`; `--help` for the knobs).

The floor is what a fresh interpreter costs here: 2 concurrent spawners of `python -I -c pass`, with the
interpreter the no-op type's jobs run with (bench/floor.py). Each throughput round is a floor, a drain of --jobs
no-op jobs, and a floor again: the round's ratio is its rate over the mean of the two floors around it, so a
machine shared with other work moves both sides alike; the table gives the median of the rounds. Per stack
(embedded: SQLite and the filesystem broker; Redis + PostgreSQL when they answer on this machine):

- throughput of no-op jobs drained by one worker: process isolation (a new interpreter per job) with each pool
  size of --processes (2 by default; the 2-process rows carry the goals and take --rounds rounds, other sizes
  --size-rounds), and fork isolation (children of the type's fork servers) with 2 pool slots;
- the user's view (bench/users.py): 2 clients POST --user-jobs jobs over HTTP while a worker runs and read their
  completion from the API (ETag polling), as jobs/s between floors and POST -> seen-completed latency;
- latency, one job at a time on an idle worker: submit -> completed from the job's own timestamps, interleaved
  with single spawns; the overhead is the median (and p99) latency minus the median spawn;
- submits/s through the API: --submits POSTs from 8 concurrent clients (h2load when installed);
- Redis + PostgreSQL only, the scale check (bench/scale.py): 1, 2 and 4 worker processes (--workers) of 2 pool
  processes each, with the SQL statements and CPU per job.

Then the peers (bench/peers/): plain Celery + Redis, RQ and Huey on SQLite drain the same no-op script with the
interpreter of an empty venv, in rounds between floors, and time one job at a time. On the embedded stack with
--rows jobs in the store (bench/api.py seeds it): `GET /jobs/{id}` at 300 requests/s offered, open loop, and a
filtered list page. Last, the default stack's memory (bench/memory.py): PSS of every process `robotni start`
runs, idle and after --memory-jobs no-op jobs. Loopback only, every wait bounded; the tables and the machine they
came from go into docs/benchmarks.md between its markers (`--no-write` to only print them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

import requests
from sqlalchemy import create_engine, func, select, text

os.environ.setdefault("ROBOTNI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
os.environ.setdefault("ROBOTNI_TEST_REDIS_URL", "redis://127.0.0.1:6379")

# After the test URLs: tests.backends reads them at import.
from bench import api as api_bench
from bench import floor
from bench import memory as memory_bench
from bench import peers as peer_bench
from bench import scale as scale_bench
from bench import users as user_bench
from bench.cpu import worker_cpu
from bench.floor import SPAWNERS, Throughput, spawn_once
from bench.post import SUBMITTERS, post_jobs
from robotni.config import WorkerPool
from robotni.store.models import Job
from robotni.worktypes import environments
from tests import backends
from tests.stack import ROOT, Stack, wait_until

T = TypeVar("T")
BENCH_WORKERS = Path(__file__).resolve().parent / "workers"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- python -m bench: begin -->", "<!-- python -m bench: end -->"
STACK_TITLES = {"embedded": "embedded (SQLite, filesystem broker)", "redis": "Redis + PostgreSQL"}
POOL_SLOTS = 2  # the pool size of issue 8's throughput goals, of fork isolation and of the latency worker
# Goals of issue 19, per stack where they differ; also for the user's view. Besides: process isolation at or
# above the best peer of its kind (PEER_GOALS), with a p99 latency far below Huey's embedded.
GOALS: dict[str, dict[str, float]] = {
    "process": {"embedded": 0.80, "redis": 0.85},  # share of the floor's rate, with POOL_SLOTS
    "fork": {"embedded": 2.5, "redis": 2.5},
    "latency": {"embedded": 20.0, "redis": 6.0},  # ms over the median spawn, p50
    "latency_p99": {"embedded": 40.0, "redis": 12.0},
    "submits": {"embedded": 600.0, "redis": 1000.0},
    "get_p99": {"embedded": 10.0},  # ms
}
PEER_GOALS = {"embedded": ["huey"], "redis": ["celery"]}  # the peers each stack's process isolation must match


def pool_label(slots: int) -> str:
    return f"{slots} pool slot{'' if slots == 1 else 's'}"


def p99(values: list[float]) -> float:
    return api_bench.percentile(values, 0.99)


@dataclass
class Results:
    """One stack's figures; None where a measure was not taken."""

    floor: float | None = None  # spawns/s, the median of every floor taken
    spawn_ms: float | None = None  # median single spawn
    robotni_spawn_ms: float | None = None  # median single spawn of Robotni's own interpreter, for comparison
    floor_python: str = ""  # which interpreter the floor used
    process: dict[int, Throughput] = field(default_factory=dict)  # by pool slots
    fork: Throughput | None = None
    latency: dict[str, list[float]] = field(default_factory=dict)  # type -> ms
    spawns: list[float] = field(default_factory=list)  # single spawns interleaved with the latency samples
    submits: float | None = None
    submit_tool: str = ""
    gets: api_bench.Result | None = None
    lists: api_bench.Result | None = None
    users: Throughput | None = None  # the user's view (bench/users.py)
    user_latency: list[float] = field(default_factory=list)  # ms, POST -> a client saw `completed`
    user_phases: dict[str, list[float]] = field(default_factory=dict)  # where that went: bench/users.py PHASES
    scale: dict[int, scale_bench.Scale] = field(default_factory=dict)  # by worker processes
    notes: list[str] = field(default_factory=list)

    def throughputs(self) -> dict[str, Throughput]:
        """Every throughput measured, by label."""
        labelled = {f"process isolation, {pool_label(n)}": measured for n, measured in self.process.items()}
        if self.fork is not None:
            labelled[f"fork isolation, {pool_label(POOL_SLOTS)}"] = self.fork
        return labelled


class Bench:
    """One stack (web + workers) on a temporary data folder, with direct read access to its job store."""

    def __init__(self, name: str, base: Path, pool: str):
        self.name, self.base = name, base
        self.backend = backends.provision(name)
        self.stack = Stack(base, {**self.backend.env, "ROBOTNI_WORKER_POOL": pool})
        for script in BENCH_WORKERS.glob("*.py"):  # noop and noopfork
            shutil.copy(script, self.stack.workers_dir / script.name)
        url = self.backend.env.get("ROBOTNI_DATABASE_URL", f"sqlite:///{self.stack.data_dir / 'robotni.db'}")
        self.stack.start_web()
        self.db = create_engine(url)
        self.workers = 0
        self.cpu_ms: dict[str, float] = {}

    def job_python(self) -> str:
        """The interpreter no-op jobs run with: the standard-library environment a worker builds at start."""
        python = self.stack.data_dir / "envs" / environments.env_key(()) / "bin" / "python"
        return str(python) if python.exists() else sys.executable

    def count(self, *where) -> int:
        with self.db.connect() as conn:
            return conn.execute(select(func.count()).select_from(Job).where(*where)).scalar_one()

    def start_worker(self, processes: int = POOL_SLOTS):
        self.workers += 1
        return self.stack.start_worker(f"b{self.workers}", concurrency=processes)

    def post(self, count: int, wtype: str) -> tuple[float, str]:
        """count submits of wtype from SUBMITTERS concurrent clients: (submits/s, the client used)."""
        return post_jobs(self.stack.api("/jobs"), count, wtype, self.base)

    def drain_rate(self, wtype: str, jobs: int, processes: int) -> float:
        """Jobs/s of one worker with `processes` pool slots draining a queue of `jobs` no-op jobs filled
        beforehand."""
        self.post(jobs, wtype)
        worker = self.start_worker(processes)
        name = f"b{self.workers}@%"
        done = [Job.status == "completed", Job.worker.like(name)]
        before = worker_cpu(worker.pid)
        wait_until(lambda: self.count(*done) >= jobs, 300, f"{jobs} {wtype} jobs to complete", every=0.1)
        after = worker_cpu(worker.pid)
        worker.stop()
        self.cpu_ms = {part: (after[part] - before[part]) * 1000 / jobs for part in after}
        return self.rate(*done)

    def rate(self, *where) -> float:
        """Jobs/s of the jobs `where` selects, from the first one's start to the last one's end."""
        query = select(func.count(), func.min(Job.started_at), func.max(Job.finished_at)).where(*where)
        with self.db.connect() as conn:
            jobs, first, last = conn.execute(query).one()
        return jobs / (last - first).total_seconds()

    def throughput(self, wtype: str, jobs: int, count: int, floor_runs: int, processes: int) -> Throughput:
        cpu_ms: list[dict[str, float]] = []

        def drain() -> float:
            rate = self.drain_rate(wtype, jobs, processes)
            cpu_ms.append(self.cpu_ms)
            return rate

        measured = floor.rounds(drain, self.job_python(), count, floor_runs)
        measured.cpu_ms = cpu_ms
        return measured

    def latencies(self, samples: int, isolations: list[str], results: Results) -> None:
        """Submit -> completed of one job at a time, each after one single spawn for the yardstick."""
        worker = self.start_worker()
        python, session = self.job_python(), requests.Session()
        own = python == sys.executable
        results.floor_python = "Robotni's own interpreter" if own else "the standard-library environment"
        results.robotni_spawn_ms = statistics.median(spawn_once(sys.executable) for _ in range(20))
        for wtype in ["noop", "noopfork"][: len(isolations)]:
            for _ in range(3):  # warm: the first jobs open the store's connections
                self.wait_completed(session.post(self.stack.api("/jobs"), json={"type": wtype}).json()["id"])
            values = results.latency.setdefault(wtype, [])
            for _ in range(samples):
                results.spawns.append(spawn_once(python))
                job_id = session.post(self.stack.api("/jobs"), json={"type": wtype}).json()["id"]
                created, finished = self.wait_completed(job_id)
                values.append((finished - created).total_seconds() * 1000)
        results.spawn_ms = statistics.median(results.spawns)
        session.close()
        worker.stop()

    def moments(self, job_ids: list[str]) -> dict[str, tuple[datetime, datetime, datetime]]:
        """Each job's created_at, started_at and finished_at."""
        query = select(Job.id, Job.created_at, Job.started_at, Job.finished_at).where(Job.id.in_(job_ids))
        with self.db.connect() as conn:
            return {job_id: (created, started, finished) for job_id, created, started, finished in conn.execute(query)}

    def wait_completed(self, job_id: str):
        query = select(Job.status, Job.created_at, Job.finished_at).where(Job.id == job_id)

        def done():
            with self.db.connect() as conn:
                status, created, finished = conn.execute(query).one()
            assert status in ("queued", "running", "completed"), status
            return (created, finished) if status == "completed" else None

        # Not faster: the polling would take CPU from the job; the latency comes from the job's own timestamps.
        return wait_until(done, 30, f"job {job_id}", every=0.02)

    def submit_rate(self, count: int) -> tuple[float, str]:
        """Submits/s through the API; the jobs are cancelled afterwards, no worker runs them."""
        rate, tool = self.post(count, "noop")
        self.cancel_queued()
        return rate, tool

    def cancel_queued(self) -> None:
        """Jobs no measure will wait for: their messages are skipped (the row is no longer queued)."""
        with self.db.begin() as conn:
            conn.execute(text("UPDATE jobs SET status = 'cancelled' WHERE status = 'queued'"))

    def close(self) -> None:
        self.stack.stop()
        self.db.dispose()
        self.backend.release()


def run_stack(name: str, args: argparse.Namespace) -> Results:
    results = Results()
    base = Path(tempfile.mkdtemp(prefix=f"robotni-bench-{name}-"))
    bench = Bench(name, base, args.pool)
    try:
        bench.start_worker().stop()  # builds the standard-library environment the jobs (and the floor) use
        measure = partial(_measured, bench, results)
        if submitted := measure("submits/s", partial(bench.submit_rate, args.submits)):
            results.submits, results.submit_tool = submitted
        for processes in args.processes:
            # The goals are for 2 processes; fewer rounds for the other sizes keep the run short.
            rounds = args.rounds if processes == POOL_SLOTS else args.size_rounds
            drain = partial(bench.throughput, "noop", args.jobs, rounds, args.floor_runs, processes)
            if measured := measure(f"process isolation, {pool_label(processes)}", drain):
                results.process[processes] = measured
        if "fork" in args.isolations:
            drain = partial(bench.throughput, "noopfork", args.jobs * 2, args.rounds, args.floor_runs, POOL_SLOTS)
            results.fork = measure("fork isolation", drain)
        if args.user_jobs:
            users = partial(
                floor.rounds, partial(users_round, bench, args, results), bench.job_python(), 1, args.floor_runs
            )
            results.users = measure("the user's view", users)
        if name == "redis":
            for workers in args.workers:
                scale = partial(scale_bench.measure, bench, workers, args.jobs, 1, args.floor_runs)
                if measured := measure(f"the scale check with {workers} worker processes", scale):
                    results.scale[workers] = measured
        floors = [f for measured in results.throughputs().values() for f in measured.floors]
        results.floor = statistics.median(floors) if floors else None
        measure("latency", partial(bench.latencies, args.samples, args.isolations, results))
    finally:
        bench.close()
        shutil.rmtree(base, ignore_errors=True)
    return results


def _measured(bench: Bench, results: Results, what: str, measure: Callable[[], T]) -> T | None:
    """One measure; if it fails (a machine shared with other work can starve anything), a note says so, the jobs it
    left queued are cancelled, and the run goes on with the next measure."""
    try:
        return measure()
    except Exception as exc:
        results.notes.append(f"{STACK_TITLES[bench.name]}: {what} not measured: {exc.__class__.__name__}: {exc}")
        bench.cancel_queued()
        return None


def users_round(bench: Bench, args: argparse.Namespace, results: Results) -> float:
    """The user's view on a running worker: jobs/s as the clients saw them; their latencies kept in results."""
    worker = bench.start_worker()
    try:
        seen = user_bench.run(bench.stack.api, args.user_jobs, args.user_window, args.user_poll)
    finally:
        worker.stop()
    results.user_latency += seen.latencies_ms()
    for phase, values in seen.phases_ms(bench.moments(list(seen.times))).items():
        results.user_phases.setdefault(phase, []).extend(values)
    return seen.rate()


def run_peers(args: argparse.Namespace) -> dict[str, peer_bench.PeerResult]:
    """Each peer of --peers drains the same no-op script with the interpreter of an empty venv, between floors."""
    base = Path(tempfile.mkdtemp(prefix="robotni-bench-peers-"))
    try:
        python = floor.empty_venv(base / "venv")
        script = str(BENCH_WORKERS / "noop.py")
        found = {}
        for name in args.peers:
            found[name] = peer_bench.measure(
                name, base, python, script, args.jobs, args.rounds, args.floor_runs, args.peer_samples
            )
            print(f"peer {name}: done", file=sys.stderr, flush=True)
        return found
    finally:
        shutil.rmtree(base, ignore_errors=True)


def run_memory(args: argparse.Namespace) -> memory_bench.Memory:
    base = Path(tempfile.mkdtemp(prefix="robotni-bench-memory-"))
    try:
        post = partial(post_jobs, wtype="noop", workdir=base)
        noop = BENCH_WORKERS / "noop.py"
        return memory_bench.measure(base, noop, args.memory_jobs, args.memory_settle, post, args.pool)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def read_api(args: argparse.Namespace, results: Results) -> None:
    """`GET /jobs/{id}` at --rate/s and a filtered list page, with --rows jobs in the embedded store."""
    base = Path(tempfile.mkdtemp(prefix="robotni-bench-api-"))
    stack = Stack(base)
    load = api_bench.h2load if shutil.which("h2load") else api_bench.python_load
    try:
        db_path = stack.data_dir / "robotni.db"
        api_bench.seed(db_path, args.rows)
        web = stack.start_web()
        url, gets = api_bench.job_gets(stack, db_path)
        _, headers, expected = gets[0]
        api_bench.warm_up(stack, url, headers, expected)
        results.gets = api_bench.with_others(web.pid, partial(load, url, args.rate, args.seconds, headers, base))
        list_url = api_bench.list_urls(stack)[LIST_PAGE]
        api_bench.warm_up(stack, list_url, {}, 200, count=5)
        run = partial(load, list_url, args.list_rate, args.list_seconds, {}, base)
        results.lists = api_bench.with_others(web.pid, run)
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)


LIST_PAGE = f"list, project={api_bench.BIG_PROJECT}&status=completed"


# --- the table ------------------------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _throughput_cell(measured: Throughput | None, goal: float | None) -> str:
    if measured is None:
        return "—"
    if goal is None:
        return measured.cell()
    return f"{measured.cell()}; goal ≥ {goal:g}x: {_mark(measured.ratio >= goal)}"


def _process_rows(name: str, r: Results, args: argparse.Namespace) -> dict[str, str]:
    """One row per pool size; only POOL_SLOTS has a goal, the others are there to show how it scales."""
    rows = {}
    for processes in args.processes:
        title = f"no-op jobs/s, {pool_label(processes)}, process isolation"
        goal = GOALS["process"][name] if processes == POOL_SLOTS else None
        if goal is None:
            title += f" (against the same {SPAWNERS}-spawner floor)"
        rows[title] = _throughput_cell(r.process.get(processes), goal)
    return rows


def _latency_cell(values: list[float] | None, spawn_ms: float | None, goals: tuple[float, float] | None) -> str:
    if not values or spawn_ms is None:
        return "—"
    median, worst = statistics.median(values) - spawn_ms, p99(values) - spawn_ms
    cell = f"{median:.1f} ms (p99 {worst:.1f} ms); latency {statistics.median(values):.1f} / p99 {p99(values):.1f} ms"
    if goals is None:
        return cell
    return f"{cell}; goal ≤ {goals[0]:g} / {goals[1]:g} ms: {_mark(median <= goals[0] and worst <= goals[1])}"


def _load_cell(result: api_bench.Result | None, goal: float | None = None) -> str:
    if result is None:
        return "—"
    lat = result.latencies_ms
    wrong = sum(status != 200 for status in result.statuses)
    cell = f"p50 {api_bench.percentile(lat, 0.5):.1f} ms, p99 {p99(lat):.1f} ms ({len(lat)} requests"
    cell += f", {wrong} not 200" if wrong else ""
    if result.others_cores is not None:
        cell += f"; other processes used {result.others_cores:.2f} cores"
    cell += ")"
    return f"{cell}; goal p99 < {goal:g} ms: {_mark(p99(lat) < goal)}" if goal is not None else cell


def cells(name: str, r: Results, args: argparse.Namespace) -> dict[str, str]:
    """One stack's column, by row title."""
    latency_goals = GOALS["latency"][name], GOALS["latency_p99"][name]
    submits = "—"
    if r.submits is not None:
        goal = GOALS["submits"][name]
        submits = f"{r.submits:.0f} ({r.submit_tool}); goal ≥ {goal:g}: {_mark(r.submits >= goal)}"
    return {
        f"floor: `python -I -c pass`, {SPAWNERS} concurrent spawners (one spawn alone, median)": "—"
        if r.floor is None
        else f"{r.floor:.0f}/s ({r.spawn_ms or 0:.1f} ms)",
        **_process_rows(name, r, args),
        f'no-op jobs/s, {pool_label(POOL_SLOTS)}, `isolation = "fork"`': _throughput_cell(r.fork, GOALS["fork"][name]),
        "submit → completed minus median spawn, process isolation (p50 / p99 goal)": _latency_cell(
            r.latency.get("noop"), r.spawn_ms, latency_goals
        ),
        "submit → completed minus median spawn, fork isolation": _latency_cell(
            r.latency.get("noopfork"), r.spawn_ms, None
        ),
        f"the user's view: {user_bench.CLIENTS} clients POST {args.user_jobs} no-op jobs while the worker runs, "
        f"{args.user_window} in flight each": _throughput_cell(r.users, GOALS["process"][name]),
        "the user's view: POST → a client sees `completed` (ETag polling every "
        f"{args.user_poll * 1000:g} ms), minus median spawn": _latency_cell(r.user_latency, r.spawn_ms, latency_goals),
        f"submits/s through the API ({SUBMITTERS} clients, gunicorn 2 sync workers)": submits,
        f"`GET /jobs/{{id}}` at {args.rate}/s offered, {args.rows:,} jobs in the store": _load_cell(
            r.gets, GOALS["get_p99"].get(name)
        ),
        f"`GET /jobs?project=…&status=completed` at {args.list_rate}/s offered, {args.rows:,} jobs": _load_cell(
            r.lists
        ),
    }


def table(all_results: dict[str, Results], args: argparse.Namespace) -> str:
    columns = {name: cells(name, results, args) for name, results in all_results.items()}
    lines = [f"| measure | {' | '.join(STACK_TITLES[n] for n in columns)} |", f"|---|{'---|' * len(columns)}"]
    for title in next(iter(columns.values())):
        lines.append(f"| {title} | {' | '.join(column[title] for column in columns.values())} |")
    notes = [note for r in all_results.values() for note in r.notes] + _sizes_note(args)
    for name, r in all_results.items():
        for label, measured in r.throughputs().items():
            if measured.cpu_ms:
                notes.append(measured.cpu_note(f"{STACK_TITLES[name]}, {label}"))
        if r.user_phases:
            notes.append(_phases_note(STACK_TITLES[name], r.user_phases))
        if r.spawn_ms is not None and r.robotni_spawn_ms is not None:
            notes.append(
                f"{STACK_TITLES[name]}: the floor's interpreter is the one no-op jobs run with ({r.floor_python}, "
                f"{r.spawn_ms:.1f} ms a spawn); Robotni's own venv interpreter took {r.robotni_spawn_ms:.1f} ms "
                "in the same run."
            )
    return "\n".join(lines + [""] + [f"- {note}" for note in notes])


def _phases_note(title: str, phases: dict[str, list[float]]) -> str:
    spent = ", ".join(
        f"{phase} {statistics.median(values):.1f} (p99 {p99(values):.1f})" for phase, values in phases.items()
    )
    return f"{title}, the user's view: where a job's POST -> seen `completed` went, median ms: {spent}"


def _over_spawn(values: list[float], spawn_ms: float | None) -> str:
    if not values or spawn_ms is None:
        return "—"
    return f"{statistics.median(values) - spawn_ms:.1f} / {p99(values) - spawn_ms:.1f} ms"


def side_by_side(all_results: dict[str, Results], peers: dict[str, peer_bench.PeerResult]) -> str:
    """Robotni's drains, its user's view and the peers' drains, each as a ratio to its own rounds' floors."""
    lines = ["| system | no-op jobs/s as a ratio to the floor | latency over a spawn, p50 / p99 | against the peer |"]
    lines.append("|---|---|---|---|")
    for name, r in all_results.items():
        rows = [
            (f"process isolation, {pool_label(POOL_SLOTS)}", r.process.get(POOL_SLOTS), r.latency.get("noop")),
            (f'`isolation = "fork"`, {pool_label(POOL_SLOTS)}', r.fork, r.latency.get("noopfork")),
            ("the user's view (POSTs while the worker runs)", r.users, r.user_latency),
        ]
        for label, measured, latencies in rows:
            versus = _versus(name, measured, latencies, r.spawn_ms, peers) if "process" in label else ""
            ratio = measured.cell() if measured else "—"
            lines.append(
                f"| Robotni, {STACK_TITLES[name]}, {label} | {ratio} | "
                f"{_over_spawn(latencies or [], r.spawn_ms)} | {versus} |"
            )
    for peer in peers.values():
        ratio = peer.throughput.cell() if peer.throughput else "—"
        latency = peer.over_spawn()
        cell = f"{latency[0]:.1f} / {latency[1]:.1f} ms" if latency else "—"
        lines.append(f"| {peer.title} | {ratio} | {cell} | |")
    notes = [peer.note for peer in peers.values() if peer.note]
    return "\n".join(lines + [""] + [f"- {note}" for note in notes])


def _versus(name: str, measured: Throughput | None, latencies, spawn_ms, peers) -> str:
    """Issue 19's goal against the peers of this stack's kind: at or above their ratio (and, embedded, a p99
    latency below Huey's)."""
    marks = []
    for peer_name in PEER_GOALS[name]:
        peer = peers.get(peer_name)
        if measured is None or peer is None or peer.throughput is None:
            continue
        marks.append(f"≥ {peer_name} ({peer.throughput.ratio:.2f}x): {_mark(measured.ratio >= peer.throughput.ratio)}")
        if name == "embedded" and latencies and spawn_ms is not None and peer.over_spawn():
            worst, theirs = p99(latencies) - spawn_ms, peer.over_spawn()[1]
            marks.append(f"p99 below {peer_name}'s ({theirs:.0f} ms): {_mark(worst < theirs)}")
    return "; ".join(marks)


def _sizes_note(args: argparse.Namespace) -> list[str]:
    """Why the rows of other pool sizes read differently from the 2-process row."""
    others = [n for n in args.processes if n != POOL_SLOTS]
    if not others:
        return []
    cores = os.cpu_count() or 1
    rounds = f"{args.size_rounds} round{'' if args.size_rounds == 1 else 's'}"
    note = (
        f"{', '.join(pool_label(n) for n in others)}: {rounds} each, and the ratio is to the same floor of "
        f"{SPAWNERS} concurrent spawners as the {POOL_SLOTS}-slot rows (no goal)"
    )
    if max(others) > cores:
        note += f"; this machine has {cores} cores, so more pool slots than that cannot do more than {cores} "
        note += "cores of work, only overlap their waits (the store, the broker)"
    return [note + "."]


def machine(loads: tuple[str, str], seconds: float, pool: str) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return (
        f"{time.strftime('%Y-%m-%d %H:%M %Z')}, commit {commit.stdout.strip() or '?'} (and uncommitted changes); "
        f"{api_bench.machine()}; load average {loads[0]} at the start, {loads[1]} at the end; "
        f"the run took {seconds / 60:.1f} min; the job workers' pool: {pool}"
    )


def write_doc(report: str) -> None:
    """Replace the generated part of docs/benchmarks.md (or append it), leaving the rest of the file alone."""
    current = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    section = f"{BEGIN}\n{report}\n{END}"
    if BEGIN in current and END in current:
        updated = current[: current.index(BEGIN)] + section + current[current.index(END) + len(END) :]
    else:
        updated = f"{current.rstrip()}\n\n## Robotni against the floor: `python -m bench`\n\n{section}\n"
    DOC.write_text(updated)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _sizes(value: str) -> list[int]:
    sizes = list(dict.fromkeys(int(size) for size in value.split(",")))  # in the order given, each once
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("pool sizes are whole numbers from 1")
    return sizes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stacks", default="embedded,redis", help="comma-separated: embedded, redis")
    parser.add_argument(
        "--isolations", default="process,fork", type=lambda v: v.split(","), help="process, or process,fork"
    )
    parser.add_argument("--jobs", type=int, default=300, help="no-op jobs per throughput round (fork: twice as many)")
    parser.add_argument(
        "--processes",
        default=str(POOL_SLOTS),
        type=_sizes,
        help="comma-separated pool sizes (worker --concurrency) for process isolation, e.g. 1,2,4",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help=f"throughput rounds per isolation with {pool_label(POOL_SLOTS)}"
    )
    parser.add_argument("--size-rounds", type=int, default=1, help="throughput rounds for each other pool size")
    parser.add_argument("--floor-runs", type=int, default=150, help="spawns per floor measurement")
    parser.add_argument("--samples", type=int, default=100, help="jobs per latency measurement")
    parser.add_argument("--submits", type=int, default=1000, help="POSTs for the submit rate")
    parser.add_argument("--rows", type=int, default=api_bench.ROWS, help="jobs in the store for the read measures")
    parser.add_argument("--rate", type=int, default=300, help="offered GET /jobs/{id} per second")
    parser.add_argument("--seconds", type=float, default=10, help="length of the GET run")
    parser.add_argument("--list-rate", type=int, default=25, help="offered list pages per second")
    parser.add_argument("--list-seconds", type=float, default=8, help="length of the list run")
    parser.add_argument("--user-jobs", type=int, default=200, help="jobs of the user's view (0: not measured)")
    parser.add_argument("--user-window", type=int, default=2, help="jobs each client of the user's view has in flight")
    parser.add_argument("--user-poll", type=float, default=0.01, help="seconds between a client's looks at its jobs")
    parser.add_argument(
        "--workers", default="1,2,4", type=_sizes, help="worker processes of the scale check (Redis + PostgreSQL)"
    )
    parser.add_argument(
        "--pool",
        default=WorkerPool.THREADS.value,
        choices=[pool.value for pool in WorkerPool],
        help="the job workers' pool (ROBOTNI_WORKER_POOL)",
    )
    parser.add_argument(
        "--peers", default="celery,rq,huey", type=lambda v: [p for p in v.split(",") if p], help="celery, rq, huey"
    )
    parser.add_argument("--peer-samples", type=int, default=50, help="jobs per peer latency measurement")
    parser.add_argument("--memory-jobs", type=int, default=10_000, help="no-op jobs between the two memory readings")
    parser.add_argument(
        "--memory-settle", type=float, default=10, help="seconds idle before each memory reading (< 0: not measured)"
    )
    parser.add_argument("--no-write", action="store_true", help=f"print only; do not update {DOC.relative_to(ROOT)}")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    started, load_before = time.monotonic(), load_average()
    all_results: dict[str, Results] = {}
    for name in args.stacks.split(","):
        try:
            all_results[name] = run_stack(name, args)
        except Exception as exc:  # a stack whose servers are not running here is reported, not fatal
            all_results[name] = Results(notes=[f"{STACK_TITLES[name]} not measured: {exc.__class__.__name__}: {exc}"])
        print(f"{name}: done after {(time.monotonic() - started) / 60:.1f} min", file=sys.stderr, flush=True)
    peers = run_peers(args) if args.peers else {}
    if args.rows and "embedded" in all_results:
        read_api(args, all_results["embedded"])
        print(f"reads: done after {(time.monotonic() - started) / 60:.1f} min", file=sys.stderr, flush=True)
    memory = run_memory(args) if args.memory_settle >= 0 else None
    seconds = time.monotonic() - started
    parts = [machine((load_before, load_average()), seconds, args.pool), table(all_results, args)]
    parts += ["### Robotni and its peers, side by side", side_by_side(all_results, peers)]
    scales = all_results.get("redis", Results()).scale
    if scales:
        parts += ["### Scale check: worker processes on one Redis + PostgreSQL", "\n".join(scale_bench.rows(scales))]
        parts.append(f"- {scale_bench.host_estimate(scales)}.")
    if memory is not None:
        rows = memory_bench.rows(memory)
        parts += ["### Memory of the default stack (`make start`), PSS", "\n".join(rows)]
    report = "\n\n".join(parts)
    print(report)
    if not args.no_write:
        write_doc(report)


if __name__ == "__main__":
    main()
