"""HTTP API latency at a constant offered load, with a million jobs in the store: `python -m bench.api`.

It runs gunicorn as the tests do (`tests.stack.Stack`: 2 sync workers, SQLite and the filesystem broker) on a
temporary data folder whose job store is first filled with --rows jobs, written straight into SQLite. Then:

- `GET /api/worker/jobs/{id}` at --rate requests/s for --seconds, open loop (a constant schedule);
- the same with `If-None-Match` holding the job's ETag (the 304 path);
- list pages (no filter, filters, the second page by cursor) at --list-rate for --list-seconds each;
- list pages whose two filters match few jobs, one request at a time (--probes of each): SQLite may walk a
  whole index for them, and an open loop at --list-rate would then only measure the queue behind them.

The load comes from h2load (Debian's `nghttp2-client`) in rate mode: it opens one connection per request on a
fixed schedule whatever the server does, so a slow answer never holds back the requests after it (no
coordinated omission); gunicorn's sync workers close every connection after one answer anyway. Without h2load,
or with `--tool python`, a small asyncio generator does the same and times each request from its scheduled
start. Only loopback is used, every run is bounded in requests and seconds, and the data folder is removed.

The machine is shared with whatever else runs on it: each row says how many cores other processes used meanwhile.
Two what-ifs change the store before the server starts, without touching Robotni's code: `--with-indexes` adds
PROPOSED_INDEXES, `--analyze` runs SQLite's ANALYZE (planner statistics).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from bench.idle import cpu_seconds
from robotni.store.engine import create_schema, make_engine
from tests.stack import Stack, wait_until

ROWS = 1_000_000
# A Zipf spread of projects: a few large ones and a long tail of small ones.
PROJECTS = [f"project-{i:02d}" for i in range(50)]
PROJECT_WEIGHTS = [1 / (rank + 1) for rank in range(len(PROJECTS))]
# A project with fewer jobs than one page: a list filtered on it must look at every candidate row to say so.
TINY_PROJECT, TINY_JOBS = "project-tiny", 30
BIG_PROJECT, SMALL_PROJECT = PROJECTS[3], PROJECTS[-1]
# Weights in percent.
TYPES = {"add": 40, "fakejob": 25, "helloworld": 15, "python-script": 15, "noop": 5}
STATUSES = {"completed": 82, "failed": 8, "cancelled": 4, "timed_out": 2, "running": 1, "queued": 3}
PARAMS = {
    "add": ('{"x": 2, "y": 3}', '{"sum": 5}'),
    "fakejob": ('{"delay_seconds": 1}', '{"waited": 1.02}'),
    "helloworld": ('{"name": "world"}', '{"greeting": "hello, world"}'),
    "python-script": ('{"script": "report.py", "args": ["--month", "10"]}', '{"rows": 1204}'),
    "noop": ("{}", None),
}
COLUMNS = (
    *("id", "type", "project", "queue", "params", "status", "result", "error", "exit_code", "attempts"),
    *("max_attempts", "worker", "cancel_requested", "progress", "log_bytes", "version"),
    *("created_at", "started_at", "finished_at", "updated_at"),
)
# The newest job is this old; the others go back SPAN from it, evenly, inserted oldest first like real traffic.
NEWEST = datetime(2026, 11, 1)
SPAN = timedelta(days=30)
BATCH = 100_000
# One request that takes longer than this counts as failed (h2load, the generator and the probes alike).
REQUEST_TIMEOUT = 10
# The probes stop after this many seconds even if not all of them ran.
PROBE_BUDGET = 60
# One index per pair of list filters, so any two filters are one index seek whatever the planner guesses.
PROPOSED_INDEXES = (
    "CREATE INDEX ix_jobs_project_status_created ON jobs (project, status, created_at, id)",
    "CREATE INDEX ix_jobs_project_type_created ON jobs (project, type, created_at, id)",
    "CREATE INDEX ix_jobs_type_status_created ON jobs (type, status, created_at, id)",
)


@dataclass
class Result:
    """One run: each request's HTTP status (-1: failed) and latency, how late the sender was, others' CPU."""

    statuses: list[int]
    latencies_ms: list[float]
    sender_lag_ms: float | None = None
    others_cores: float | None = None


# --- the job store ------------------------------------------------------------------------------------------


def _stamp(moment: datetime) -> str:
    # SQLAlchemy's text for a SQLite DateTime: the cursor and the created_at filters compare with exactly this.
    return moment.isoformat(" ", "microseconds")


def _projects(count: int, rng: random.Random) -> list[str]:
    projects = rng.choices(PROJECTS, weights=PROJECT_WEIGHTS, k=count)
    for i in rng.sample(range(count), min(TINY_JOBS, count)):
        projects[i] = TINY_PROJECT
    return projects


def _job_rows(count: int, rng: random.Random) -> Iterator[tuple]:
    """count jobs, oldest first, as tuples in the order of COLUMNS."""
    types = rng.choices(list(TYPES), weights=list(TYPES.values()), k=count)
    statuses = rng.choices(list(STATUSES), weights=list(STATUSES.values()), k=count)
    oldest, step = NEWEST - SPAN, SPAN / count
    for i, (wtype, status, project) in enumerate(zip(types, statuses, _projects(count, rng), strict=True)):
        created = oldest + step * i
        started = None if status == "queued" else created + timedelta(milliseconds=40)
        finished = None if status in ("queued", "running") else started + timedelta(seconds=1.2)
        params, result = PARAMS[wtype]
        yield (
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            wtype,
            project,
            "default",
            params,
            status,
            result if status == "completed" else None,
            None if status in ("completed", "running", "queued") else f"job {status}",
            {"completed": 0, "failed": 1}.get(status),
            0 if status == "queued" else 1,
            1,
            None if started is None else "w1@bench",
            int(status == "cancelled"),
            1.0 if status == "completed" else None,
            0 if started is None else 180,
            1 if status == "queued" else 3,
            _stamp(created),
            None if started is None else _stamp(started),
            None if finished is None else _stamp(finished),
            _stamp(finished or started or created),
        )


def seed(db_path: Path, count: int) -> float:
    """Create the schema as Robotni does, then insert count jobs with sqlite3; the seconds it took."""
    started = time.perf_counter()
    engine = make_engine(f"sqlite:///{db_path}")
    create_schema(engine)
    engine.dispose()
    rng = random.Random(20261124)  # the same store on every run
    insert = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    db = sqlite3.connect(db_path, isolation_level=None)
    try:
        # A throwaway file: no rollback journal, no fsync, a page cache big enough for the indexes.
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-1000000")
        rows = _job_rows(count, rng)
        while batch := list(itertools.islice(rows, BATCH)):
            db.execute("BEGIN")
            db.executemany(insert, batch)
            db.execute("COMMIT")
        db.execute("PRAGMA journal_mode=WAL")  # back to what Robotni expects to find
    finally:
        db.close()
    return time.perf_counter() - started


def alter(db_path: Path, statements: list[str]) -> float:
    """Run the what-if statements on the store; the seconds they took."""
    started = time.perf_counter()
    with sqlite3.connect(db_path) as db:
        for statement in statements:
            db.execute(statement)
    return time.perf_counter() - started


def index_order(db_path: Path) -> list[str]:
    """The jobs indexes in the order they were created, which decides SQLite's choice between equal guesses."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'")
        return [name for name, sql in rows if sql]  # no sql: the primary key's own index


def query_plans(db_path: Path, wheres: dict[str, tuple[str, tuple]]) -> dict[str, str]:
    """SQLite's plan for each list query, in the shape SQLAlchemy gives `search` (IN lists, row values)."""
    plans = {}
    with sqlite3.connect(db_path) as db:
        for name, (where, args) in wheres.items():
            sql = f"SELECT * FROM jobs WHERE {where} ORDER BY created_at DESC, id DESC LIMIT 51"
            plans[name] = "; ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", args))
    return plans


# --- load ---------------------------------------------------------------------------------------------------


def _sender_lag_ms(starts: list[float], rate: float) -> float:
    """How far behind its schedule the sender fell at worst: 0 for a perfect open loop."""
    starts = sorted(starts)
    return max((start - starts[0] - i / rate) * 1000 for i, start in enumerate(starts))


def _h2load_schedule(rate: int) -> tuple[int, int]:
    """(connections, period in ms) for h2load's `-r` and `--rate-period`, which takes whole milliseconds only.

    The shortest whole period that holds a whole number of connections: 300/s is 3 every 10 ms, 25/s 1 every
    40 ms. The connections of one period start together, a small burst a real client could send as well.
    """
    period = next(ms for ms in range(1, 1001) if rate * ms % 1000 == 0)
    return rate * period // 1000, period


def h2load(url: str, rate: int, seconds: float, headers: dict[str, str], workdir: Path) -> Result:
    """rate * seconds requests, one fresh connection each, opened on h2load's timer."""
    total = int(rate * seconds)
    per_period, period_ms = _h2load_schedule(rate)
    log = workdir / "h2load.log"
    log.unlink(missing_ok=True)
    argv = ["h2load", "--h1", "-t1", f"-c{total}", f"-n{total}", "-m1", f"-r{per_period}"]
    argv += [f"--rate-period={period_ms}ms", f"-T{REQUEST_TIMEOUT}", f"--log-file={log}"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + REQUEST_TIMEOUT + 30)
    if done.returncode != 0:
        raise RuntimeError(f"h2load failed:\n{done.stdout}\n{done.stderr}")
    rows = [line.split("\t") for line in log.read_text().splitlines()]
    # Requests h2load never finished are missing from its log: they count as failed, at the timeout.
    missing = total - len(rows)
    statuses = [int(row[1]) for row in rows] + [-1] * missing
    latencies = [int(row[2]) / 1000 for row in rows] + [REQUEST_TIMEOUT * 1000.0] * missing
    return Result(statuses, latencies, _sender_lag_ms([int(row[0]) / 1e6 for row in rows], rate))


async def _one(host: str, port: int, request: bytes, due: float, starts: list[float]) -> tuple[int, float]:
    """One request on its own connection, timed from when it was due, not from when it was sent."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, due - loop.time()))
    starts.append(loop.time())
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            answer = await reader.read()  # to the end: gunicorn's sync workers close after one answer
            writer.close()
        status = int(answer[9:12])
    except (OSError, TimeoutError, ValueError):
        status = -1
    return status, (loop.time() - due) * 1000


async def _generate(url: str, rate: int, seconds: float, headers: dict[str, str]) -> Result:
    parts = urllib.parse.urlsplit(url)
    lines = [f"GET {parts.path}?{parts.query} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    request = "\r\n".join([*lines, *(f"{k}: {v}" for k, v in headers.items()), "", ""]).encode()
    loop = asyncio.get_running_loop()
    first, starts = loop.time() + 0.1, []
    due = [first + i / rate for i in range(int(rate * seconds))]
    done = await asyncio.gather(*(_one(parts.hostname, parts.port, request, t, starts) for t in due))
    return Result([s for s, _ in done], [ms for _, ms in done], _sender_lag_ms(starts, rate))


def python_load(url: str, rate: int, seconds: float, headers: dict[str, str], _workdir: Path) -> Result:
    """The fallback generator: every request is scheduled up front, each on its own connection."""
    return asyncio.run(_generate(url, rate, seconds, headers))


def probe(stack: Stack, url: str, count: int) -> Result:
    """count requests one after the other (closed loop): the time one such request takes on an idle server."""
    statuses, latencies, deadline = [], [], time.monotonic() + PROBE_BUDGET
    while len(statuses) < count and time.monotonic() < deadline:
        started = time.perf_counter()
        answer = stack.http.get(url, headers={"Connection": "close"}, timeout=REQUEST_TIMEOUT)
        latencies.append((time.perf_counter() - started) * 1000)
        statuses.append(answer.status_code)
    return Result(statuses, latencies)


# --- measuring ----------------------------------------------------------------------------------------------


def _busy_seconds() -> float:
    """CPU seconds all cores have been busy since boot, from /proc/stat (idle and iowait excluded)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _own_seconds(web_pid: int) -> float:
    """CPU seconds of this run: gunicorn and its workers, this process and its finished children (h2load)."""
    mine = os.times()
    return cpu_seconds(web_pid) + mine.user + mine.system + mine.children_user + mine.children_system


def with_others(web_pid: int, measure: Callable[[], Result]) -> Result:
    """measure(), noting the cores other processes on the machine kept busy meanwhile."""
    busy, own, started = _busy_seconds(), _own_seconds(web_pid), time.monotonic()
    result = measure()
    elapsed = time.monotonic() - started
    # /proc counts in clock ticks (10 ms): over less than a second the difference says nothing.
    if elapsed >= 1:
        others = (_busy_seconds() - busy) - (_own_seconds(web_pid) - own)
        result.others_cores = min(max(0.0, others) / elapsed, os.cpu_count() or 1)
    return result


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: a value that was measured."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def table_row(name: str, offered: str, result: Result, expected: int) -> str:
    wrong = Counter(s for s in result.statuses if s != expected)
    errors = ", ".join(f"{count} x {status}" for status, count in sorted(wrong.items())) or "none"
    lat = result.latencies_ms
    lag = "—" if result.sender_lag_ms is None else f"{result.sender_lag_ms:.1f}"
    others = "—" if result.others_cores is None else f"{result.others_cores:.2f}"
    return (
        f"| {name} | {offered} | {len(lat)} | {percentile(lat, 0.5):.1f} | {percentile(lat, 0.99):.1f} | "
        f"{max(lat):.1f} | {lag} | {others} | {errors} |"
    )


TABLE_HEAD = (
    "| request | offered | requests | p50 ms | p99 ms | max ms | sender lag ms | others' cores | other statuses |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def warm_up(stack: Stack, url: str, headers: dict[str, str], expected: int, count: int = 20) -> None:
    """A few requests first, so each gunicorn worker has its engine and the pages it needs before timing."""
    for _ in range(count):
        answer = stack.http.get(url, headers={**headers, "Connection": "close"}, timeout=REQUEST_TIMEOUT)
        assert answer.status_code == expected, f"{url}: {answer.status_code} {answer.text[:300]}"


def list_urls(stack: Stack) -> dict[str, str]:
    """The list pages to load; the second pages use the cursor their first page gave out."""
    api = stack.api("/jobs")
    urls = {
        "list, no filter": f"{api}?limit=50",
        f"list, project={BIG_PROJECT}&status=completed": f"{api}?project={BIG_PROJECT}&status=completed&limit=50",
        "list, type=add": f"{api}?type=add&limit=50",
        f"list, project={SMALL_PROJECT}&status=completed": f"{api}?project={SMALL_PROJECT}&status=completed&limit=50",
    }
    for name in ("list, no filter", f"list, project={BIG_PROJECT}&status=completed"):
        cursor = stack.http.get(urls[name], timeout=REQUEST_TIMEOUT).json()["next_cursor"]
        urls[f"{name}, page 2"] = f"{urls[name]}&cursor={urllib.parse.quote(cursor)}"
    return urls


def probe_urls(stack: Stack) -> dict[str, str]:
    api = stack.api("/jobs")
    return {
        f"list, project={TINY_PROJECT}": f"{api}?project={TINY_PROJECT}&limit=50",
        f"list, project={TINY_PROJECT}&status=completed": f"{api}?project={TINY_PROJECT}&status=completed&limit=50",
        f"list, project={TINY_PROJECT}&type=add": f"{api}?project={TINY_PROJECT}&type=add&limit=50",
        # No job is ever seeded as scheduled: the slow case when the project's index is the one chosen.
        f"list, project={PROJECTS[0]}&status=scheduled": f"{api}?project={PROJECTS[0]}&status=scheduled&limit=50",
    }


def plans(db_path: Path) -> dict[str, str]:
    after = ("(created_at, id) < (?, ?)", (_stamp(NEWEST - SPAN / 2), "~"))
    both = "project IN (?) AND status IN (?)"
    return query_plans(
        db_path,
        {
            "no filter": ("1", ()),
            "type": ("type IN (?)", ("add",)),
            "project & status": (both, (BIG_PROJECT, "completed")),
            "project & status, page 2": (f"{both} AND {after[0]}", (BIG_PROJECT, "completed", *after[1])),
            "no filter, page 2": after,
            "project & type": ("project IN (?) AND type IN (?)", (TINY_PROJECT, "add")),
            "type & status": ("type IN (?) AND status IN (?)", ("noop", "failed")),
        },
    )


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.machine())
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    h2load_version = ""
    if shutil.which("h2load"):
        h2load_version = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kb / 2**20:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
        + (f", {h2load_version}" if h2load_version else "")
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=ROWS, help="jobs in the store")
    parser.add_argument("--rate", type=int, default=300, help="offered requests/s for the job GETs")
    parser.add_argument("--seconds", type=float, default=15, help="length of each job GET run")
    parser.add_argument("--list-rate", type=int, default=25, help="offered requests/s for each list page")
    parser.add_argument("--list-seconds", type=float, default=12, help="length of each list run")
    parser.add_argument("--probes", type=int, default=5, help="sequential requests for each slow list page")
    parser.add_argument("--with-indexes", action="store_true", help="add PROPOSED_INDEXES to the store")
    parser.add_argument("--analyze", action="store_true", help="run ANALYZE on the store before starting")
    default_tool = "h2load" if shutil.which("h2load") else "python"
    parser.add_argument("--tool", choices=("h2load", "python"), default=default_tool, help="the load generator")
    return parser.parse_args()


def prepare_store(args: argparse.Namespace, db_path: Path) -> None:
    print(f"Seeded {args.rows:,} jobs in {seed(db_path, args.rows):.1f} s.")
    what_if = [*(PROPOSED_INDEXES if args.with_indexes else ()), *(["ANALYZE"] if args.analyze else [])]
    if what_if:
        print(f"What-if ({'; '.join(what_if)}) took {alter(db_path, what_if):.1f} s.")
    print(f"Indexes of jobs, in creation order: {', '.join(index_order(db_path))}.")


def job_gets(stack: Stack, db_path: Path) -> tuple[str, list[tuple[str, dict[str, str], int]]]:
    """The URL of the newest completed job, and the two ways to ask for it: plain (200) and with its ETag (304)."""
    with sqlite3.connect(db_path) as db:
        newest = "SELECT id FROM jobs WHERE status = 'completed' ORDER BY created_at DESC LIMIT 1"
        url = stack.api(f"/jobs/{db.execute(newest).fetchone()[0]}")
    etag = wait_until(lambda: stack.http.get(url, timeout=REQUEST_TIMEOUT).headers.get("ETag"), 10, "an ETag")
    return url, [("job GET", {}, 200), ("job GET, If-None-Match (304)", {"If-None-Match": etag}, 304)]


def run(args: argparse.Namespace, stack: Stack) -> None:
    load = h2load if args.tool == "h2load" else python_load
    db_path = stack.data_dir / "robotni.db"
    prepare_store(args, db_path)
    web = stack.start_web()
    argv = Path(f"/proc/{web.pid}/cmdline").read_text().split("\0")
    print(f"Server: {' '.join(argv[argv.index('gunicorn') :]).strip()}")
    job_url, gets = job_gets(stack, db_path)

    print(f"\n{TABLE_HEAD}")
    for name, headers, expected in gets:
        warm_up(stack, job_url, headers, expected)
        result = with_others(web.pid, partial(load, job_url, args.rate, args.seconds, headers, stack.base))
        print(table_row(name, f"{args.rate}/s", result, expected), flush=True)
    for name, url in list_urls(stack).items():
        warm_up(stack, url, {}, 200, count=5)
        result = with_others(web.pid, partial(load, url, args.list_rate, args.list_seconds, {}, stack.base))
        print(table_row(name, f"{args.list_rate}/s", result, 200), flush=True)
    for name, url in probe_urls(stack).items():
        result = with_others(web.pid, partial(probe, stack, url, args.probes))
        print(table_row(name, "one at a time", result, 200), flush=True)

    print(f"\nSQLite's plans ({'after ANALYZE' if args.analyze else 'no ANALYZE, as Robotni leaves the store'}):\n")
    for name, plan in plans(db_path).items():
        print(f"- {name}: `{plan}`")


def main() -> None:
    args = parse_args()
    print(f"Machine: {machine()}; load: {args.tool}; {time.strftime('%Y-%m-%d')}\n")
    base = Path(tempfile.mkdtemp(prefix="robotni-bench-api-"))
    stack = Stack(base)
    try:
        run(args, stack)
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
