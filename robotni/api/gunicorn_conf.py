"""gunicorn's settings for Robotni's API: `gunicorn -c python:robotni.api.gunicorn_conf 'robotni.api.app:create_app()'`.

Only hooks and what the app needs of every gunicorn (bind, workers and the rest stay on the command line):
gunicorn's own lines in Robotni's log format, prometheus_client's multiprocess folder emptied at start and told
of each worker that exits, and the app loaded once in the master, whose workers share its memory.
"""

from __future__ import annotations

import gc

from gunicorn.arbiter import Arbiter
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.workers.base import Worker

from robotni import logsetup  # metrics first sets PROMETHEUS_MULTIPROC_DIR, for the workers too
from robotni.api import metrics
from robotni.store import engine

# Open streams each worker process can hold next to ordinary requests. gunicorn's workers take connections
# unevenly (one may take most of them), so each can hold them all: 2 workers hold 1000 streams in any case.
# A thread is made when first needed; with its stream it costs 70-80 KiB (docs/benchmarks.md, bench/streams.py).
THREADS_PER_WORKER = 1000
# Connections a worker takes beyond its threads: idle keep-alive connections, which hold no thread.
KEEPALIVE_CONNECTIONS = 100


class RobotniLogger(Logger):
    """gunicorn's error and access loggers, formatted as Robotni's (JSON, or text at a terminal)."""

    def setup(self, cfg: Config) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                logsetup.style(handler)


logger_class = RobotniLogger


def on_starting(server: Arbiter) -> None:
    metrics.reset_multiprocess_dir()


# The master imports the app and forks the workers from it: they share its pages (about 25 MiB each,
# docs/benchmarks.md) instead of each importing Flask, SQLAlchemy, Celery's client and the app.
preload_app = True


def pre_fork(server: Arbiter, worker: Worker) -> None:
    # create_app() checked the schema over a connection: no worker may inherit it. Freezing the objects loaded so
    # far keeps the collector from writing to them (and so copying their pages) in every worker.
    engine.before_fork()
    gc.freeze()


def child_exit(server: Arbiter, worker: Worker) -> None:
    # types-gunicorn says str, after the "[booting]" placeholder; the arbiter set the child's pid at the fork.
    metrics.process_exited(worker.pid)  # type: ignore[arg-type]


# Threads, not sync workers: a live event stream (robotni/api/streams.py) holds its thread while it lasts, so a
# worker needs many threads; the streams of a process share one reader of the store (robotni/api/feeds.py) and
# hold no database connection between events.
worker_class = "gthread"
threads = THREADS_PER_WORKER
worker_connections = THREADS_PER_WORKER + KEEPALIVE_CONNECTIONS
