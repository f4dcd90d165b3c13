"""Webhooks: `python -m bench.webhooks` (about a minute on 2 cores; `--help` for the knobs).

- the outbox's cost per job: a claim and a finish (two status changes, each writing its event row) on SQLite,
  with no subscription and with one that matches (an event payload and a delivery row more per change);
- event-to-delivery latency: jobs one at a time, a subscription to job.completed, a receiver on loopback; from
  the event's timestamp (its transaction) to the receiver's clock;
- deliveries/s: a backlog of completed-job deliveries drained by the webhooks worker (the Procfile's line:
  8 threads), started once the backlog is there.

Live event streams have their own: bench/streams.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from robotni.store import claims, creation, engine, events, jobs, subscriptions
from tests.stack import Stack, wait_until
from tests.webhook_receiver import Receiver


def outbox_cost(count: int) -> dict[str, float]:
    """Milliseconds per job (claim + finish) without and with a matching subscription."""
    costs = {}
    with tempfile.TemporaryDirectory() as folder:
        fresh = engine.make_engine(f"sqlite:///{folder}/bench.db")
        engine.create_schema(fresh)
        engine.use(fresh)
        try:
            for label in ("no subscription", "one matching subscription"):
                if label != "no subscription":
                    subscriptions.create("http://127.0.0.1:9/", ["job.started", "job.completed"], [], "whsec_eA==")
                made = [
                    creation.create(type="t", project="p", params={}, queue="q", max_attempts=1, venv=None)[0]
                    for _ in range(count)
                ]
                started = time.perf_counter()
                for _ in made:
                    running = claims.claim_next("q", "w", 30, claims.Caps())
                    assert running is not None
                    jobs.finish(running, jobs.JobStatus.COMPLETED, result={"ok": True})
                costs[label] = (time.perf_counter() - started) / count * 1000
            assert events.last_id() == 4 * count
        finally:
            engine.use(None)
            fresh.dispose()
    return costs


def latencies(stack: Stack, receiver: Receiver, count: int) -> list[float]:
    found = []
    for _ in range(count):
        before = len(receiver.calls)
        stack.submit("helloworld", project="latency")
        wait_until(lambda before=before: len(receiver.calls) > before, 30, "a delivery")
        at, _, body = receiver.calls[-1]
        found.append((at - datetime.fromisoformat(json.loads(body)["timestamp"]).timestamp()) * 1000)
    return found


def drain(stack: Stack, receiver: Receiver, count: int) -> tuple[float, float]:
    """Deliveries/s of a backlog of count deliveries, once the webhooks worker starts."""
    ids = [stack.submit("helloworld", project="drain")["id"] for _ in range(count)]
    for job_id in ids:
        stack.wait_for(job_id, timeout=120)
    before = len(receiver.calls)
    started = time.monotonic()
    stack.start_webhooks_worker("drainer")
    wait_until(lambda: len(receiver.calls) - before >= count, 300, "the backlog", every=0.02)
    return count / (receiver.calls[-1][0] - receiver.calls[before][0] + 1e-9), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300, help="jobs per outbox measure")
    parser.add_argument("--latency", type=int, default=30, help="jobs for the event-to-delivery latency")
    parser.add_argument("--backlog", type=int, default=200, help="deliveries in the drained backlog")
    args = parser.parse_args()
    print("outbox, ms per job (claim + finish):", outbox_cost(args.jobs))
    receiver = Receiver().start()
    with tempfile.TemporaryDirectory() as folder:
        stack = Stack(Path(folder), {"ROBOTNI_WEBHOOK_ALLOW_PRIVATE": "1"})
        try:
            stack.start_web()
            stack.start_worker()
            hooks = stack.start_webhooks_worker()
            stack.http.post(stack.api("/webhooks"), json={"url": receiver.url, "events": ["job.completed"]})
            found = sorted(latencies(stack, receiver, args.latency))
            print(f"event -> delivery: median {statistics.median(found):.1f} ms, max {found[-1]:.1f} ms")
            hooks.stop()
            rate, took = drain(stack, receiver, args.backlog)
            print(f"deliveries/s draining {args.backlog}: {rate:.0f}/s ({took:.1f} s from the worker's start)")
        finally:
            stack.stop()
            receiver.stop()


if __name__ == "__main__":
    main()
