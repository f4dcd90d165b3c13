"""Huey on SQLite: one consumer, `-w 2 -k process`, Huey's default polling (the app: huey_app.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.peers.base import Peer


class HueyPeer(Peer):
    title = "Huey + SQLite (`-w 2 -k process`)"
    name = "huey"

    def __init__(self, base: Path, python: str, script: str):
        super().__init__(base, python, script)
        # The app reads its file's name at import, here and in the consumer.
        self.env["BENCH_PEER_HUEY_DB"] = os.environ["BENCH_PEER_HUEY_DB"] = str(base / "huey.db")
        from bench.peers import huey_app

        self.huey, self.task = huey_app.huey, huey_app.noop

    def worker_argvs(self) -> list[list[str]]:
        consumer = str(Path(sys.executable).parent / "huey_consumer")
        return [[consumer, "bench.peers.huey_app.huey", "-w", "2", "-k", "process"]]

    def ready(self, log: str) -> bool:
        return "consumer started" in log

    def submit(self, count: int) -> None:
        for _ in range(count):
            self.task(*self.task_args())
