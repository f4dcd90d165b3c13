"""Live event streams (SSE) at scale: `python -m bench.streams` (about 3 minutes a round; `--help` for the knobs).

For each variant, one stack at a time: gunicorn as the Procfile runs it (2 `gthread` workers; `--threads`
overrides the config's count for every variant), one worker running --jobs `chatter` jobs that print 10 lines/s
and report progress (bench/workers/chatter.py), then:

1. --streams job streams (spread over the jobs) opened by a light asyncio reader that only counts bytes;
2. gunicorn's workers' memory (PSS and RSS from /proc/<pid>/smaps_rollup) and threads before and with the
   streams (so a stream's share includes its thread), and the CPU gunicorn uses for the streams alone (--idle
   seconds without other requests);
3. `GET /jobs/{id}` at --rate requests/s for --seconds with the streams open (h2load, open loop, one connection
   per request, as in bench/api.py), and how many streams were still open then, each having received events;
4. the same requests once the streams are closed: the reference for this stack at this moment.

With `--baseline DIR` (a checkout of another commit: `git archive <commit> | tar -x -C DIR`; repeatable) the
stacks of that checkout run in alternation with this one's, round after round (in reverse order every other
round), each of its processes started in DIR so that `robotni` is imported from there. `--stack redis` runs on
Redis + PostgreSQL (ROBOTNI_TEST_REDIS_URL and ROBOTNI_TEST_POSTGRES_URL, a fresh database each). Each row says
the load average and the cores that other processes than gunicorn and this benchmark used meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.api import Result, h2load, percentile, with_others
from bench.idle import cpu_seconds
from tests.backends import provision
from tests.stack import ROOT, Stack, wait_until

BENCH_WORKERS = Path(__file__).resolve().parent / "workers"
# A stream that got no byte for this long (keep-alives come every 15 s) counts as lost.
SILENT_SECONDS = 20.0


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def web_workers(stack: Stack) -> list[int]:
    [web] = [p for p in stack.processes if p.name == "web"]
    return [int(pid) for pid in Path(f"/proc/{web.pid}/task/{web.pid}/children").read_text().split()]


def memory(pids: list[int]) -> dict[str, float]:
    """PSS and RSS (MiB) summed over pids, and their threads."""
    found = {"pss": 0.0, "rss": 0.0, "threads": 0.0}
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("Pss", "Rss"):
                found[name.lower()] += int(value.split()[0]) / 1024
        status = Path(f"/proc/{pid}/status").read_text()
        found["threads"] += int(status.split("Threads:")[1].split()[0])
    return found


@dataclass
class Held:
    """What the stream holder saw of each stream: answered 200, bytes received, last byte's time, closed early."""

    opened: list[bool] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    last: list[float] = field(default_factory=list)
    closed: list[bool] = field(default_factory=list)


class Holder:
    """count streams held open on an asyncio loop in a thread of its own, until stop()."""

    def __init__(self, url: str, paths: list[str]):
        self.host, self.port = url.removeprefix("http://").split(":")
        self.paths, self.held = paths, Held()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> Holder:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._open_all(), self.loop).result(60)
        return self

    async def _open_all(self) -> None:
        count = len(self.paths)
        self.held = Held([False] * count, [0] * count, [0.0] * count, [False] * count)
        self.tasks = [asyncio.create_task(self._hold(n, path)) for n, path in enumerate(self.paths)]

    async def _hold(self, number: int, path: str) -> None:
        reader, writer = await asyncio.open_connection(self.host, int(self.port))
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept: text/event-stream\r\n\r\n"
        writer.write(request.encode())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.held.opened[number] = head.startswith(b"HTTP/1.1 200")
            while data := await reader.read(65536):
                self.held.received[number] += len(data)
                self.held.last[number] = time.monotonic()
            self.held.closed[number] = True
        except (OSError, asyncio.IncompleteReadError):
            self.held.closed[number] = True
        finally:
            writer.close()

    def alive(self) -> int:
        """Streams answered 200, still open, that received a byte within SILENT_SECONDS."""
        now, held = time.monotonic(), self.held
        return sum(
            ok and not closed and now - last < SILENT_SECONDS
            for ok, closed, last in zip(held.opened, held.closed, held.last, strict=True)
        )

    def stop(self) -> None:
        async def cancel() -> None:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@dataclass
class Run:
    variant: str
    load: str = ""
    reference: Result | None = None
    loaded: Result | None = None
    held: int = 0
    opened: int = 0
    before: dict[str, float] = field(default_factory=dict)
    during: dict[str, float] = field(default_factory=dict)
    streams_cores: float = 0.0
    web_cores: float = 0.0
    reference_cores: float = 0.0


def timed(stack: Stack, job_id: str, args: argparse.Namespace) -> Result:
    url = stack.api(f"/jobs/{job_id}")
    [web] = [p for p in stack.processes if p.name == "web"]
    return with_others(web.pid, lambda: h2load(url, args.rate, args.seconds, {}, stack.base))


def cores(pid: int, seconds: float, during: Callable[[], object] | None = None) -> float:
    """Cores the process (and its children) used over seconds, or while during() ran."""
    before, started = cpu_seconds(pid), time.monotonic()
    if during is None:
        time.sleep(seconds)
    else:
        during()
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def measure(variant: str, root: Path, args: argparse.Namespace) -> Run:
    run = Run(variant, load=load_average())
    backend = provision(args.stack)
    with tempfile.TemporaryDirectory(prefix="robotni-streams-") as folder:
        stack = Stack(Path(folder), backend.env, root=root)
        for script in BENCH_WORKERS.glob("chatter.py"):
            shutil.copy(script, stack.workers_dir / script.name)
        holder = None
        try:
            web = stack.start_web(["--threads", str(args.threads)] if args.threads else [])
            stack.start_worker("chat", concurrency=args.jobs)
            seconds = 3 * args.seconds + args.idle + 90  # everything below, with room for opening the streams
            jobs = [stack.submit("chatter", {"seconds": seconds})["id"] for _ in range(args.jobs)]
            for job_id in jobs:
                stack.wait_for(job_id, ["running"], timeout=60)
            for _ in range(40):  # each gunicorn worker has its engine and pages before timing
                stack.http.get(stack.api(f"/jobs/{jobs[0]}"), headers={"Connection": "close"})
            run.before = memory(web_workers(stack))  # before anything grows the thread pools
            paths = [f"/api/worker/jobs/{jobs[n % len(jobs)]}/events" for n in range(args.streams)]
            holder = Holder(stack.url, paths).start()
            with contextlib.suppress(AssertionError):  # those not answered by then count as not held
                wait_until(lambda: sum(holder.held.opened) >= args.streams, 60, "streams answered", every=0.5)
            time.sleep(2)  # the streams' first reads (the log so far) are done
            run.streams_cores = cores(web.pid, args.idle)
            run.during = memory(web_workers(stack))
            run.web_cores = cores(web.pid, 0, lambda: setattr(run, "loaded", timed(stack, jobs[0], args)))
            run.opened, run.held = sum(holder.held.opened), holder.alive()
            holder.stop()
            holder = None
            time.sleep(2)  # the streams' threads are back in the pools
            run.reference_cores = cores(web.pid, 0, lambda: setattr(run, "reference", timed(stack, jobs[0], args)))
        finally:
            if holder is not None:
                holder.stop()
            stack.stop()
            backend.release()
    return run


def row(run: Run, streams: int) -> str:
    def latency(result: Result | None) -> str:
        if result is None:
            return "—"
        lat, bad = result.latencies_ms, sum(s != 200 for s in result.statuses)
        others = "—" if result.others_cores is None else f"{result.others_cores:.2f}"
        return f"p50 {percentile(lat, 0.5):.1f}, p99 {percentile(lat, 0.99):.1f} ms ({bad} errors; others {others})"

    before, during = run.before, run.during
    per = {k: (during.get(k, 0) - before.get(k, 0)) * 1024 / max(run.held, 1) for k in ("pss", "rss")}
    return (
        f"| {run.variant} | {run.load} | {run.held} of {streams} ({run.opened} answered) | {latency(run.loaded)} | "
        f"{latency(run.reference)} | {run.streams_cores:.2f}, {run.web_cores:.2f}, {run.reference_cores:.2f} | "
        f"{before.get('pss', 0):.0f} → {during.get('pss', 0):.0f} MiB: {per['pss']:.0f} KiB | {per['rss']:.0f} KiB | "
        f"{before.get('threads', 0):.0f} → {during.get('threads', 0):.0f} |"
    )


HEAD = (
    "| variant | load average at start | streams held | GET /jobs/{id}, streams open | GET /jobs/{id}, no stream "
    "| gunicorn cores: streams alone, streams + GETs, GETs alone | PSS of the web workers: a stream | "
    "RSS a stream | threads |\n|---|---|---|---|---|---|---|---|---|"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500, help="concurrent job streams")
    parser.add_argument("--jobs", type=int, default=4, help="running jobs the streams follow")
    parser.add_argument("--rate", type=int, default=300, help="GET /jobs/{id} per second, offered")
    parser.add_argument("--seconds", type=float, default=20, help="each timed GET run")
    parser.add_argument("--idle", type=float, default=5, help="seconds the streams' own CPU is measured")
    parser.add_argument("--threads", type=int, default=0, help="gunicorn --threads for every variant (0: config's)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--stack", choices=["embedded", "redis"], default="embedded")
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        default=[],
        help="another checkout, measured in alternation (repeatable)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    variants = [("this tree", ROOT), *((f"baseline {path}", path) for path in args.baseline)]
    print(f"{args.stack} stack, {args.streams} streams over {args.jobs} jobs; GET at {args.rate}/s, {args.seconds} s")
    print(HEAD, flush=True)
    for number in range(args.rounds):
        for variant, root in variants if number % 2 == 0 else variants[::-1]:
            print(row(measure(variant, root, args), args.streams), flush=True)
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
