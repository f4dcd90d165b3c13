"""kombu's Redis transport, with one client object a channel for its commands instead of a new one for each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
    """kombu builds a `redis.Redis` for every publish, ack and reservation: its `__init__` (a table of some 200
    response callbacks) took a fifth of a Redis worker's main process (docs/benchmarks.md). A client only borrows
    connections from the channel's pool, so one serves them all, until the channel makes a new pool."""

    _commands: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        if self._commands is None or self._commands.connection_pool is not self.pool:
            self._commands = self._create_client()  # type: ignore[attr-defined]  # kombu-stubs omit it
        yield self._commands


class Transport(redis.Transport):
    Channel = Channel
