"""Prometheus metrics at /metrics: job counts from the job store, API latency from every gunicorn worker.

Job metrics are read from the job store when scraped (robotni/store/tallies.py): every API process on every host
answers the same, wherever the workers run, and nothing is pushed. API latency is measured in each gunicorn
worker and shared through prometheus_client's multiprocess files in $ROBOTNI_DATA_DIR/prometheus, which
gunicorn empties at start (robotni/api/gunicorn_conf.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from functools import cache

from robotni.config import settings

# prometheus_client chooses multiprocess mode when first imported: the folder must be named before that.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings().metrics_dir)
settings().metrics_dir.mkdir(parents=True, exist_ok=True)

from flask import Flask, Response, g, request  # noqa: E402
from prometheus_client import CollectorRegistry, Histogram, multiprocess, values  # noqa: E402
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric  # noqa: E402
from prometheus_client.exposition import choose_encoder  # noqa: E402
from prometheus_client.utils import floatToGoString  # noqa: E402

from robotni.status import TERMINAL  # noqa: E402
from robotni.store import claims, tallies, waiting, worker_beats  # noqa: E402
from robotni.store.engine import engine  # noqa: E402
from robotni.worktypes.registry import registry  # noqa: E402

log = logging.getLogger(__name__)
# API latency, seconds: a submit or a poll takes milliseconds; a log read or a flush may take longer.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Any other method is counted as "other": a label value a client chooses must not grow the series without end.
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
REQUEST_SECONDS = Histogram(
    "robotni_http_request_duration_seconds",
    "API requests: time to answer, by route, method and status code",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
# False when something imported prometheus_client before this module: latency is then this process's only.
MULTIPROCESS = values.ValueClass is not values.MutexValue


def job_families(snapshot: tallies.Snapshot, types: Iterable[str], queues: Iterable[str]) -> Iterator[Metric]:
    """The job metrics of a snapshot; every known type and queue is listed, at 0 when it has no jobs."""
    per_type: dict[str, tallies.Tally] = defaultdict(tallies.Tally)
    for (type_, _status), tally in snapshot.tallies.items():
        per_type[type_].merge(tally)
    names = sorted(set(types) | set(per_type))
    submitted = CounterMetricFamily("robotni_jobs_submitted", "Jobs accepted, by type", labels=["type"])
    finished = CounterMetricFamily(
        "robotni_jobs_finished", "Jobs ended, by type and final status", labels=["type", "status"]
    )
    duration = HistogramMetricFamily(
        "robotni_job_duration_seconds",
        "Run time of the attempt that ended a job (jobs that ended while running), by type",
        labels=["type"],
    )
    for name in names:
        tally = per_type[name]
        submitted.add_metric([name], tally.jobs)
        for status in sorted(s.value for s in TERMINAL):
            finished.add_metric([name, status], snapshot.tallies.get((name, status), tallies.Tally()).jobs)
        buckets = [(floatToGoString(b), n) for b, n in zip(tallies.BUCKETS, tally.buckets, strict=True)]
        duration.add_metric([name], [*buckets, ("+Inf", tally.timed)], tally.seconds)
    yield from (submitted, finished, duration)
    yield _gauge("robotni_queue_depth", "Jobs queued for a worker, by queue", "queue", queues, snapshot.queued)
    yield _gauge("robotni_jobs_running", "Jobs running now, by type", "type", names, snapshot.running)
    waiting = "Jobs waiting for a retry or a deferred start, by type"
    yield _gauge("robotni_jobs_scheduled", waiting, "type", names, snapshot.scheduled)


def waiting_families(summary: waiting.Summary) -> Iterator[Metric]:
    """Queued jobs per queue and priority, what holds them back, and the busiest concurrency keys."""
    queued = GaugeMetricFamily(
        "robotni_jobs_waiting", "Jobs queued, by queue and priority", labels=["queue", "priority"]
    )
    for queue, counts in sorted(summary.by_queue.items()):
        for priority, n in counts.items():
            queued.add_metric([queue, priority], n)
    held = GaugeMetricFamily(
        "robotni_jobs_held",
        "Queued jobs a limit holds back now, by reason and the queue, key, project or type it holds",
        labels=["reason", "name"],
    )
    for reason, names in summary.held.items():
        for name, n in names.items():
            held.add_metric([reason, name], n)
    yield from (queued, held)
    for field, doc in (
        ("running", "Jobs running, by concurrency key (the keys with the most running)"),
        ("limit", "The limit of a concurrency key with jobs running"),
        ("waiting", "Jobs queued, by concurrency key with jobs running"),
    ):
        family = GaugeMetricFamily(f"robotni_concurrency_{field}", doc, labels=["key"])
        for key, shown in summary.keys.items():
            family.add_metric([key], shown[field])
        yield family


def _gauge(name: str, doc: str, label: str, known: Iterable[str], counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for value in sorted(set(known) | set(counts)):
        family.add_metric([value], counts.get(value, 0))
    return family


class JobStoreCollector:
    """Reads the job store at each scrape; robotni_job_store_up says whether it could."""

    def collect(self) -> Iterator[Metric]:
        current = settings()
        types = registry()
        try:
            snapshot = tallies.snapshot(engine(), settle=tallies.settle_seconds(current.retention_days))
            workers = worker_beats.alive(current.heartbeat_seconds)
            consumed = {queue for worker in workers for queue in worker["queues"]}
            summary = waiting.summary({*types.queues, *snapshot.queued}, consumed, claims.caps())
        except Exception:  # a store that is down is something to alert on, not a failed scrape
            log.warning("metrics: the job store could not be read", exc_info=True)
            yield GaugeMetricFamily("robotni_job_store_up", "1 when this scrape could read the job store", value=0)
            return
        yield GaugeMetricFamily("robotni_job_store_up", "1 when this scrape could read the job store", value=1)
        yield from job_families(snapshot, types, types.queues)
        yield from waiting_families(summary)
        yield GaugeMetricFamily("robotni_workers_alive", "Workers whose heartbeat is recent", value=len(workers))


@cache
def collector_registry() -> CollectorRegistry:
    """This process's: the latency files of every gunicorn worker, and the job store."""
    found = CollectorRegistry(auto_describe=False)  # registering must not read the store
    if MULTIPROCESS:
        multiprocess.MultiProcessCollector(found)
    else:
        found.register(REQUEST_SECONDS)
    found.register(JobStoreCollector())
    return found


def install(app: Flask) -> None:
    """Time every request; serve /metrics (plain text, outside the OpenAPI document; access as api/auth.py says)."""
    app.before_request(_request_started)
    app.after_request(_request_done)
    app.add_url_rule("/metrics", "metrics", _metrics)


def _metrics() -> Response:
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(collector_registry()), content_type=content_type)


def _request_started() -> None:
    g.robotni_metrics_started = time.perf_counter()


def _request_done(response: Response) -> Response:
    started = g.pop("robotni_metrics_started", None)
    if started is not None:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        method = request.method if request.method in METHODS else "other"
        REQUEST_SECONDS.labels(route, method, str(response.status_code)).observe(time.perf_counter() - started)
    return response


# --- gunicorn's master (robotni/api/gunicorn_conf.py) ----------------------------------------------------------


def reset_multiprocess_dir() -> None:
    """At server start: the latency files of an earlier run would be added to this one's."""
    folder = settings().metrics_dir
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def process_exited(pid: int) -> None:
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)
