"""RQ: 2 workers (`rq worker`), each forking a work horse per job (the job: rq_jobs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from redis import Redis
from rq import Queue

from bench.peers.base import Peer
from tests import backends

WORKERS = 2


class RqPeer(Peer):
    title = f"RQ + Redis ({WORKERS} workers, a fork per job)"
    name = "rq"

    def __init__(self, base: Path, python: str, script: str):
        super().__init__(base, python, script)
        self.backend = backends.redis_only("rq-peer")
        self.url = self.backend.env["ROBOTNI_BROKER_URL"]
        self.redis = Redis.from_url(self.url)
        self.queue = Queue("peer", connection=self.redis)

    def worker_argvs(self) -> list[list[str]]:
        rq = str(Path(sys.executable).parent / "rq")
        return [[rq, "worker", "--url", self.url, "--name", f"peer-{n}-{self.starts}", "peer"] for n in range(WORKERS)]

    def ready(self, log: str) -> bool:
        return "Listening on" in log

    def submit(self, count: int) -> None:
        for _ in range(count):
            self.queue.enqueue("bench.peers.rq_jobs.noop", *self.task_args())

    def close(self) -> None:
        self.redis.close()
        self.backend.release()
