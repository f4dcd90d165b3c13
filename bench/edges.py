"""The cost of an edge: `python -m bench.edges` (a few minutes; `--help` for the knobs).

Per stack (embedded; Redis + PostgreSQL when they answer on this machine), no-op jobs submitted as one workflow
each time, so every shape goes through the same insert:

- a chain of --steps steps against --steps independent steps, on a worker with 1 pool process: both run one job
  at a time, so the difference is what each edge adds (the dependent's release in its parent's transaction, its
  message sent only then, and no prefetched message waiting);
- 1 -> --steps -> 1 (fan-out, then fan-in) against --steps + 2 independent steps, on 2 pool processes.

The time of a shape is its first step's creation to its last step's end, from the stored timestamps; the
per-step overhead is (shape - independent) / steps. Each pair runs --rounds times; the table gives medians.

Then, in the job store alone (no broker, no worker): the time of a job's terminal transition with no dependent
and with one waiting dependent it releases, --store-jobs of each, interleaved: what an edge adds to the
transaction that ends its parent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from datetime import datetime

os.environ.setdefault("ROBOTNI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
os.environ.setdefault("ROBOTNI_TEST_REDIS_URL", "redis://127.0.0.1:6379")

# After the test URLs: tests.backends reads them at import.
from bench.fresh import BENCH_WORKERS, job_store, stack_on
from robotni.status import JobStatus
from robotni.store import claims, creation, jobs
from tests.stack import Stack, wait_until

STACKS = {"embedded": "embedded (SQLite, filesystem broker)", "redis": "Redis + PostgreSQL"}


def chain(steps: int) -> list[dict]:
    return [{"name": f"s{i}", "type": "noop", "depends_on": [f"s{i - 1}"] if i else []} for i in range(steps)]


def fan(steps: int) -> list[dict]:
    middle = [{"name": f"m{i}", "type": "noop", "depends_on": ["first"]} for i in range(steps)]
    last = {"name": "last", "type": "noop", "depends_on": [step["name"] for step in middle]}
    return [{"name": "first", "type": "noop"}, *middle, last]


def independent(steps: int) -> list[dict]:
    return [{"name": f"s{i}", "type": "noop"} for i in range(steps)]


@dataclass
class Run:
    seconds: float  # first step created -> last step ended
    submit_ms: float  # the POST /workflows itself
    handover_ms: float | None  # a chain: the median of a step's start minus its parent's end


def run(stack: Stack, steps: list[dict]) -> Run:
    started = time.perf_counter()
    response = stack.http.post(stack.api("/workflows"), json={"name": "bench", "steps": steps})
    submit_ms = (time.perf_counter() - started) * 1000
    assert response.status_code == 202, response.text
    url = stack.api(f"/workflows/{response.json()['id']}")
    done = wait_until(lambda: (w := stack.http.get(url).json())["status"] != "running" and w, 600, "it", every=0.5)
    assert done["status"] == "completed", done["status"]
    jobs = [step["job"] for step in done["steps"]]
    first = min(datetime.fromisoformat(job["created_at"]) for job in jobs)
    last = max(datetime.fromisoformat(job["finished_at"]) for job in jobs)
    return Run((last - first).total_seconds(), submit_ms, _handover_ms(steps, done["steps"]))


def _handover_ms(steps: list[dict], done: list[dict]) -> float | None:
    """How long a chain's step waited after its parent's end (the release, its message or the hand-off, the
    claim): the median over the steps, steadier on a loaded machine than the difference of two drains."""
    ended = {step["name"]: step["job"] for step in done}
    gaps = [
        datetime.fromisoformat(ended[step["name"]]["started_at"])
        - datetime.fromisoformat(ended[step["depends_on"][0]]["finished_at"])
        for step in steps
        if len(step.get("depends_on", [])) == 1 and len(steps) == len(done) and step["name"].startswith("s")
    ]
    return statistics.median(gap.total_seconds() * 1000 for gap in gaps) if gaps else None


def measure(name: str, args: argparse.Namespace) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {}
    with stack_on(name, "edges", BENCH_WORKERS.glob("*.py")) as stack:
        stack.start_web()
        for processes, shapes in ((1, ("chain", "chain-independent")), (2, ("fan", "fan-independent"))):
            worker = stack.start_worker(f"p{processes}", concurrency=processes)
            run(stack, independent(10))  # warm: the pool processes open the store
            for _ in range(args.rounds):
                for shape in shapes:
                    steps = {
                        "chain": chain(args.steps),
                        "chain-independent": independent(args.steps),
                        "fan": fan(args.steps),
                        "fan-independent": independent(args.steps + 2),
                    }[shape]
                    runs.setdefault(shape, []).append(run(stack, steps))
            worker.stop()
    return runs


def store_cost(name: str, count: int) -> tuple[float, float]:
    """Median ms of finish() for a job without dependents and for one releasing its dependent."""
    job = {"type": "noop", "project": "bench", "params": {}, "queue": "default", "max_attempts": 1, "venv": None}
    alone: list[float] = []
    with_edge: list[float] = []
    with job_store(name, "edges-store"):
        for i in range(count * 2):
            parent = claims.take(creation.create(**job)[0].id, "bench", 60)
            assert parent is not None
            if i % 2:
                creation.create(**job, depends_on=[parent.id])
            started = time.perf_counter()
            jobs.finish(parent, JobStatus.COMPLETED)
            (with_edge if i % 2 else alone).append((time.perf_counter() - started) * 1000)
    return statistics.median(alone), statistics.median(with_edge)


def rows(title: str, runs: dict[str, list[Run]], steps: int) -> list[str]:
    def median(shape: str) -> float:
        return statistics.median(r.seconds for r in runs[shape])

    def submit(shape: str) -> float:
        return statistics.median(r.submit_ms for r in runs[shape])

    handovers = [r.handover_ms for r in runs["chain"] if r.handover_ms is not None]
    handover = f"{statistics.median(handovers):.1f} ms"
    out = [f"| {title} | a chain's step: its start minus its parent's end, median | {handover} | | | |"]
    for shape, label, count in (("chain", f"chain of {steps}", steps), ("fan", f"1 -> {steps} -> 1", steps + 2)):
        base = f"{shape}-independent"
        overhead = (median(shape) - median(base)) * 1000 / count
        out.append(
            f"| {title} | {label} | {median(shape):.2f} s | {median(base):.2f} s | **{overhead:.1f} ms** "
            f"| {submit(shape):.0f} / {submit(base):.0f} ms |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stacks", nargs="+", default=list(STACKS), choices=list(STACKS))
    parser.add_argument("--store-jobs", type=int, default=500)
    parser.add_argument("--no-workers", action="store_true", help="only the job store's part")
    args = parser.parse_args()
    lines = [
        "| stack | shape | time | as many independent steps | per-step overhead | submit (shape / independent) |",
        "|---|---|---|---|---|---|",
    ]
    for name in [] if args.no_workers else args.stacks:
        lines += rows(STACKS[name], measure(name, args), args.steps)
    lines += [
        "",
        "| store | a job's end, no dependent | the same, releasing one dependent | an edge adds |",
        "|---|---|---|---|",
    ]
    for name in args.stacks:
        alone, with_edge = store_cost(name, args.store_jobs)
        store = "SQLite" if name == "embedded" else "PostgreSQL"
        lines.append(f"| {store} | {alone:.2f} ms | {with_edge:.2f} ms | **{with_edge - alone:.2f} ms** |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
