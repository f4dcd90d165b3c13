"""kombu's filesystem transport with three changes.

- A message appears in the queue folder only once it is whole: kombu creates the message file, then writes it;
  a consumer polling in between moves the empty file away and fails to decode it, and the message is gone.
  Writing a hidden file and renaming it closes that window (a rename within one folder is atomic, and consumers
  skip names that start with a dot).
- A consumer lists the folder once for many messages, not once per message and queue: kombu lists and sorts the
  whole folder in every `_get`, for each queue it consumes (its own and the worker's control queue), so a
  backlog of n messages cost O(n²) (0.25 ms per message at 600, 5 ms at 10,000). Here one listing is sorted into
  a batch per queue; a queue takes its batch oldest first (a name another consumer took meanwhile is skipped, as
  kombu skips it), and the folder is listed again when a queue's batch is used up, at most every half polling
  interval (between two polls of an idle worker, so no message waits longer than before).
- It runs in Celery's event loop, as Redis and RabbitMQ do: the loop looks at the folder each polling interval.
  Kombu's own is not asynchronous, so a worker on it runs billiard's threaded pool, which cannot grow or shrink
  (`--autoscale`, Flower's pool buttons) safely (see the Transport class).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import deque
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads


class Channel(filesystem.Channel):
    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._batches: dict[str, deque[str]] = {}  # queue -> names of its messages from the last listing
        self._listed_at = float("-inf")

    def _list(self) -> None:
        self._listed_at, self._batches = monotonic(), {}
        for name in sorted(os.listdir(self.data_folder_in)):
            _, dot, rest = name.partition(".")  # <time>_<uuid>.<queue>.msg; hidden ones are being written
            if dot and not name.startswith(".") and rest.endswith(".msg"):
                self._batches.setdefault(rest[: -len(".msg")], deque()).append(name)

    # kombu's filesystem Channel narrows _get and _put from the virtual Channel's signatures as well.
    def _get(self, queue: str) -> dict[str, Any]:  # type: ignore[override]
        stale = monotonic() - self._listed_at >= (self.connection.polling_interval or 0) / 2
        if stale and not self._batches.get(queue):
            self._list()
        batch = self._batches.get(queue)
        while batch:
            name = batch.popleft()
            try:  # claimed by this rename, as in kombu (store_processed is always on here)
                shutil.move(os.path.join(self.data_folder_in, name), self.processed_folder)
            except OSError:
                continue  # another consumer took it
            try:
                with open(os.path.join(self.processed_folder, name), "rb") as f:
                    message: dict[str, Any] = loads(bytes_to_str(f.read()))
                    return message
            except OSError as exc:
                raise ChannelError(f"Cannot read file {name!r} from queue.") from exc
        raise Empty()

    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        hidden = os.path.join(self.data_folder_out, f".{name}")
        try:
            with open(hidden, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.rename(hidden, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
    # Celery runs its event loop, and billiard's AsynPool (a pipe per pool process), only for an asynchronous
    # transport. Without it a worker runs billiard's threaded pool, whose resizing is broken: Celery's autoscaler
    # thread adds processes while billiard's supervisor thread maintains the pool, and the supervisor dies on
    # `KeyError: None` (a process listed before it has a pid; a plain Celery app does the same); and after a
    # shrink, which signals idle processes sharing one queue lock, every pool process can end up waiting on that
    # lock with no live holder, so no job is taken again (docs/scheduling.md).
    implements = filesystem.Transport.implements.extend(asynchronous=True)

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        """The folder has no file descriptor to watch: the event loop looks at it each polling interval."""
        loop.call_repeatedly(self.polling_interval, self._deliver_ready)

    def _deliver_ready(self) -> None:
        """Hand the consumers what the folder holds now, as far as their prefetch allows, without waiting."""
        assert self.cycle is not None  # kombu's virtual Transport sets it in __init__
        while True:
            try:
                self.cycle.get(self._deliver)
            except Empty:
                return
