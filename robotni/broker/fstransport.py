"""kombu's filesystem transport with five changes.

- Each queue has a folder of its own in the broker folder (kombu writes every queue's messages into one): a
  consumer lists only its queues' messages, so a backlog of one queue costs the others nothing (an idle webhooks
  worker, beat's or Flower's consumers listed a 6,000-message job backlog every 25 ms, about a third of a core
  each). Messages written before (`<ms>_<uuid>.<queue>.msg` in the broker folder itself) move into their queue's
  folder when a channel opens.
- A message appears in its queue folder only once it is whole: kombu creates the message file, then writes it;
  a consumer polling in between moves the empty file away and fails to decode it, and the message is gone.
  Writing a hidden file and renaming it closes that window (a rename within one folder is atomic, and consumers
  skip names that start with a dot).
- A consumer lists a queue folder once for many messages, not once per message: kombu lists and sorts the whole
  folder in every `_get`, so a backlog of n messages cost O(n²) (0.25 ms per message at 600, 5 ms at 10,000).
  Here a listing is the queue's batch, taken oldest first (a name another consumer took meanwhile is skipped, as
  kombu skips it); the folder is listed again when the batch is used up, at most every half polling interval
  (between two polls of an idle worker, so no message waits longer than before).
- It runs in Celery's event loop, as Redis and RabbitMQ do: the loop looks at the folders each polling interval.
  Kombu's own is not asynchronous, so a worker on it runs billiard's threaded pool, which cannot grow or shrink
  (`--autoscale`, Flower's pool buttons) safely (see the Transport class).
- A consumer with nothing to read waits for the next message to land in one of its queue folders (Linux's
  inotify, a watch per folder read) for at most the polling interval, instead of sleeping the whole interval: a
  message waited half of it on average (25 ms at the default 0.05 s), now about nothing. Without inotify the
  wait is the sleep it was.
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
from typing import Any, cast
from urllib.parse import quote

from kombu import Connection
from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads


def folder_name(queue: str) -> str:
    """A queue's folder in the broker folder: its name, with a slash or a leading dot spelled out."""
    name = quote(queue, safe="@+")  # Celery's own queue names hold dots and @ (`default@host.celery.pidbox`)
    return "%2E" + name[1:] if name.startswith(".") else name


def adopt_flat_messages(folder: str) -> None:
    """Messages written before queues had folders (`<ms>_<uuid>.<queue>.msg` in the broker folder itself) move
    into their queue's folder, so an upgrade loses none."""
    for name in os.listdir(folder):
        _, dot, rest = name.partition(".")
        if dot and not name.startswith(".") and rest.endswith(".msg"):
            queue_folder = os.path.join(folder, folder_name(rest[: -len(".msg")]))
            os.makedirs(queue_folder, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):  # another process adopted it first
                os.rename(os.path.join(folder, name), os.path.join(queue_folder, name))


def _write_whole(folder: str, name: str, data: bytes) -> None:
    hidden = os.path.join(folder, f".{name}")
    with open(hidden, "wb") as f:
        f.write(data)
    os.rename(hidden, os.path.join(folder, name))


class Channel(filesystem.Channel):
    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._batches: dict[str, deque[str]] = {}  # queue -> names of its messages from its last listing
        self._listed_at: dict[str, float] = {}
        self._watched: set[str] = set()
        os.makedirs(self.data_folder_in, exist_ok=True)
        adopt_flat_messages(self.data_folder_in)

    def list_again(self) -> None:
        self._listed_at.clear()  # a message landed: list at once, it is in no batch yet

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        """An ack frees a place in the prefetch: fill it now, not at the next polling interval (a pool process that
        ended its job would wait for it: a third of a drain's time, bench/)."""
        super().basic_ack(delivery_tag, multiple)
        cast(Transport, self.connection).deliver_soon()

    def _in_folder(self, queue: str) -> str:
        """The queue's folder to read; the transport's watch tells when a message lands in it."""
        folder = os.path.join(self.data_folder_in, folder_name(queue))
        if queue not in self._watched:
            os.makedirs(folder, exist_ok=True)
            cast(Transport, self.connection).watch(folder)
            self._watched.add(queue)
        return folder

    def _messages(self, folder: str) -> list[str]:
        """Whole messages of a queue folder, oldest first (hidden ones are being written)."""
        try:
            names = os.listdir(folder)
        except FileNotFoundError:  # a queue nobody has written to, or removed by robotni/broker/cleaning.py
            return []
        return sorted(name for name in names if not name.startswith(".") and name.endswith(".msg"))

    # kombu's filesystem Channel narrows _get and _put from the virtual Channel's signatures as well.
    def _get(self, queue: str) -> dict[str, Any]:  # type: ignore[override]
        folder = self._in_folder(queue)
        batch = self._batches.get(queue)
        stale = monotonic() - self._listed_at.get(queue, float("-inf")) >= (self.connection.polling_interval or 0) / 2
        if stale and not batch:
            self._listed_at[queue] = monotonic()
            batch = self._batches[queue] = deque(self._messages(folder))
            if not batch and not os.path.isdir(folder):
                self._watched.discard(queue)  # removed while empty (robotni/broker/cleaning.py): make and watch again
        while batch:
            name = batch.popleft()
            try:  # claimed by this rename, as in kombu (store_processed is always on here)
                shutil.move(os.path.join(folder, name), self.processed_folder)
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
        folder = os.path.join(self.data_folder_out, folder_name(queue))
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{folder_name(queue)}.msg"  # as kombu's, but a plain name
        data = str_to_bytes(dumps(payload))
        try:
            try:
                _write_whole(folder, name, data)
            except FileNotFoundError:  # the queue's first message
                os.makedirs(folder, exist_ok=True)
                _write_whole(folder, name, data)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to directory {folder!r}") from exc

    def _size(self, queue: str) -> int:
        return len(self._messages(os.path.join(self.data_folder_in, folder_name(queue))))

    def _purge(self, queue: str) -> int:
        folder, purged = os.path.join(self.data_folder_in, folder_name(queue)), 0
        for name in self._messages(folder):
            with contextlib.suppress(FileNotFoundError):  # taken by a consumer meanwhile
                os.remove(os.path.join(folder, name))
                purged += 1
        return purged


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
        self._loop: Any = None  # the event loop consuming, if one does (it reads the landing's fd too)

    def watch(self, folder: str) -> None:
        """Wake this transport's consumers when a message lands in a queue folder they read."""
        self._landing_made().watch(folder)

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        """The event loop looks at the queue folders each polling interval, and at once when a message lands."""
        loop.call_repeatedly(self.polling_interval, self._deliver_ready)
        self._loop = loop
        landing = self._landing_made()
        if landing.fd >= 0:
            loop.add_reader(landing.fd, self._landed)

    def close_connection(self, connection: Any) -> None:
        """Also close the inotify fd: a consumer that reconnects (robotni/broker/revokes.py) makes a new one each
        time, and a user has few inotify instances (128 by default)."""
        super().close_connection(connection)
        if self._landing is not None:
            if self._loop is not None and self._landing.fd >= 0:
                self._loop.remove(self._landing.fd)  # before the number is free for another file
            self._landing.close()
        self._landing, self._loop = None, None

    def deliver_soon(self) -> None:
        """Hand the consumers what they may take, in the event loop's next turn (a consumer without one polls)."""
        if self._loop is not None:
            self._loop.call_soon(self._deliver_ready)

    def _landed(self) -> None:
        self._landing_made().drain()
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
        if self._landing_made().wait(seconds):
            self._list_again()

    def _landing_made(self) -> Landing:
        """Made by the first consumer: a process that only publishes (the API) watches nothing."""
        if self._landing is None:
            self._landing = Landing()
        return self._landing

    def _list_again(self) -> None:
        for channel in _channels_of(self):
            channel.list_again()


def _channels_of(transport: Transport) -> list[Channel]:
    return [channel for channel in transport.channels or [] if isinstance(channel, Channel)]


IN_MOVED_TO = 0x80  # <sys/inotify.h>: a file was renamed into the watched folder (how _put publishes)
_libc = ctypes.CDLL(None, use_errno=True)


class Landing:
    """Files renamed into the watched queue folders, from inotify; `wait` sleeps when inotify cannot be had."""

    def __init__(self) -> None:
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)

    def watch(self, folder: str) -> None:
        # A watch that fails (the user's watch limit) leaves that folder to the polling interval; the fd stays
        # open, as an event loop may be reading it.
        if self.fd >= 0:
            _libc.inotify_add_watch(self.fd, os.fsencode(folder), IN_MOVED_TO)

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
