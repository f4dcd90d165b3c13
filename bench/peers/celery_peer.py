"""Plain Celery + Redis: one worker, prefork pool of 2, acks late, prefetch 1 (the app: celery_app.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.peers.base import Peer
from tests import backends


class CeleryPeer(Peer):
    title = "plain Celery + Redis (prefork 2, acks_late, prefetch 1)"
    name = "celery"

    def __init__(self, base: Path, python: str, script: str):
        super().__init__(base, python, script)
        self.backend = backends.redis_only("celery-peer")
        self.env["BENCH_PEER_BROKER"] = self.backend.env["ROBOTNI_BROKER_URL"]
        from bench.peers import celery_app

        celery_app.app.conf.broker_url = self.env["BENCH_PEER_BROKER"]
        self.app, self.task = celery_app.app, celery_app.noop

    def worker_argvs(self) -> list[list[str]]:
        argv = [sys.executable, "-m", "celery", "-A", "bench.peers.celery_app", "worker", "--pool", "prefork"]
        return [[*argv, "--concurrency", "2", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]]

    def ready(self, log: str) -> bool:
        return " ready." in log

    def submit(self, count: int) -> None:
        for _ in range(count):
            self.task.apply_async(args=self.task_args())

    def close(self) -> None:
        self.app.close()
        self.backend.release()
