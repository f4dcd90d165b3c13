"""kombu's filesystem transport with four changes.

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
- A consumer with nothing to read waits for the next message to land in the queue folder (Linux's inotify) for
  at most the polling interval, instead of sleeping the whole interval: a message waited half of it on average
  (25 ms at the default 0.05 s), now about nothing. The control folder (revoke, inspect, Flower) is still
  polled; without inotify the wait is the sleep it was.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import time
import uuid
from collections import deque
from queue import Empty
from time import monotonic
from typing import Any

from kombu import Connection
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads


class Channel(filesystem.Channel):
    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._batches: dict[str, deque[str]] = {}  # queue -> names of its messages from the last listing
        self.listed_at = float("-inf")

    def _list(self) -> None:
        self.listed_at, self._batches = monotonic(), {}
        for name in sorted(os.listdir(self.data_folder_in)):
            _, dot, rest = name.partition(".")  # <time>_<uuid>.<queue>.msg; hidden ones are being written
            if dot and not name.startswith(".") and rest.endswith(".msg"):
                self._batches.setdefault(rest[: -len(".msg")], deque()).append(name)

    # kombu's filesystem Channel narrows _get and _put from the virtual Channel's signatures as well.
    def _get(self, queue: str) -> dict[str, Any]:  # type: ignore[override]
        stale = monotonic() - self.listed_at >= (self.connection.polling_interval or 0) / 2
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

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._landing: Landing | None = None
        self._loop: Any = None  # the event loop reading the landing's fd, if one does

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        """The event loop looks at the folder each polling interval, and at once when a message lands in it."""
        loop.call_repeatedly(self.polling_interval, self._deliver_ready)
        landing = self._landing_of_channels()
        if landing is not None and landing.fd >= 0:
            loop.add_reader(landing.fd, self._landed)
            self._loop = loop

    def close_connection(self, connection: Any) -> None:
        """Also close the inotify fd: a consumer that reconnects (robotni/broker/revokes.py) makes a new one each
        time, and a user has few inotify instances (128 by default)."""
        super().close_connection(connection)
        if self._landing is not None:
            if self._loop is not None:
                self._loop.remove(self._landing.fd)  # before the number is free for another file
            self._landing.close()
        self._landing, self._loop = None, None

    def _landed(self) -> None:
        assert self._landing is not None  # the loop reads its fd only once it is made
        self._landing.drain()
        self._list_again()
        self._deliver_ready()

    def _deliver_ready(self) -> None:
        """Hand the consumers what the folder holds now, as far as their prefetch allows, without waiting."""
        assert self.cycle is not None  # kombu's virtual Transport sets it in __init__
        while True:
            try:
                self.cycle.get(self._deliver)
            except Empty:
                return

    # kombu-stubs types this override of theirs the same way, with the same ignore (the base class takes kwargs).
    def drain_events(self, connection: Connection, timeout: float | None = None) -> None:  # type: ignore[override]
        """kombu's loop, but its pause between empty looks ends as a message lands in the queue folder."""
        started, cycle = monotonic(), self.cycle
        assert cycle is not None  # set up with the transport
        pause = self.polling_interval
        if timeout and pause and pause > timeout:
            pause = timeout
        while True:
            try:
                cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                if timeout is not None and monotonic() - started >= timeout:
                    raise TimeoutError() from None
                if pause is not None:
                    self._wait(pause)

    def _wait(self, seconds: float) -> None:
        landing = self._landing_of_channels()
        if landing is None:
            time.sleep(seconds)
        elif landing.wait(seconds):
            self._list_again()

    def _landing_of_channels(self) -> Landing | None:
        channels = _channels_of(self)
        if self._landing is None and channels:
            self._landing = Landing(channels[0].data_folder_in)
        return self._landing

    def _list_again(self) -> None:
        for channel in _channels_of(self):
            channel.listed_at = float("-inf")  # list again at once: the new message is in no batch yet


def _channels_of(transport: Transport) -> list[Channel]:
    return [channel for channel in transport.channels or [] if isinstance(channel, Channel)]


IN_MOVED_TO = 0x80  # <sys/inotify.h>: a file was renamed into the watched folder (how _put publishes)
_libc = ctypes.CDLL(None, use_errno=True)


class Landing:
    """Files renamed into one folder, from inotify; `wait` sleeps when inotify cannot be had."""

    def __init__(self, folder: str) -> None:
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd >= 0 and _libc.inotify_add_watch(self.fd, os.fsencode(folder), IN_MOVED_TO) < 0:
            os.close(self.fd)
            self.fd = -1

    def wait(self, seconds: float) -> bool:
        """True if a file landed (the events are read), else False after `seconds`."""
        if self.fd < 0:
            time.sleep(seconds)
            return False
        if not select.select([self.fd], [], [], seconds)[0]:
            return False
        self.drain()
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def drain(self) -> None:
        """Read the pending events (the fd is readable): what an event loop's reader of `fd` calls too."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 65536):
                pass
