"""robotni/broker/fstransport.py: a folder per queue, whole messages only, oldest first, one folder listing for many
messages."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import time
import uuid

import pytest
from kombu import Connection
from kombu.asynchronous import Hub

from robotni.broker.fstransport import folder_name


@pytest.fixture
def connect(tmp_path):
    folders = {name: tmp_path / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    options = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": True,
        "polling_interval": 0.05,
    }
    connections = []

    def channel(**overrides):
        conn = Connection(transport="robotni.broker.fstransport:Transport", transport_options=options | overrides)
        connections.append(conn)
        return conn.channel()

    yield channel, folders
    for conn in connections:
        conn.release()


def put(folder, millisecond: int, queue_name: str, n) -> None:
    """A message file as the transport names it (`<ms>_<uuid>.<queue>.msg`), in its queue's folder; puts within
    one millisecond have no order between them, so these get distinct times."""
    queue_folder = folder / folder_name(queue_name)
    queue_folder.mkdir(exist_ok=True)
    (queue_folder / f"{millisecond}_{uuid.uuid4()}.{queue_name}.msg").write_text(json.dumps({"n": n}))


def test_messages_come_oldest_first_per_queue_and_once(connect):
    channel, folders = connect
    first, second = channel(), channel()
    for i in range(6):
        put(folders["queue"], 1000 + i, "default", i)
    put(folders["queue"], 999, "other.queue", "other")
    (folders["queue"] / "default" / ".half-written.default.msg").write_text("{")  # a put in progress: never taken
    taken = [first._get("default")["n"], second._get("default")["n"], first._get("default")["n"]]
    taken += [second._get("default")["n"] for _ in range(3)]
    assert sorted(taken) == list(range(6))  # each once
    assert taken[:2] == [0, 1] and taken[2] > taken[0]  # oldest first, each consumer in its own listing's order
    assert first._get("other.queue") == {"n": "other"}
    with pytest.raises(queue.Empty):
        first._get("default")
    assert os.listdir(folders["queue"] / "default") == [".half-written.default.msg"]
    assert not os.listdir(folders["queue"] / "other.queue")


def test_a_new_message_is_seen_at_the_next_poll(connect):
    channel, _ = connect
    consumer = channel()
    with pytest.raises(queue.Empty):
        consumer._get("default")
    consumer._put("default", {"n": 1})
    consumer.list_again()  # what a message landing in a watched folder, or the next poll, does
    assert consumer._get("default") == {"n": 1}


def test_each_queue_lists_only_its_own_folder(connect):
    channel, folders = connect
    idle = channel()
    for i in range(50):
        put(folders["queue"], 1000 + i, "default", i)
    with pytest.raises(queue.Empty):
        idle._get("webhooks")
    assert idle._size("default") == 50 and idle._size("webhooks") == 0
    assert sorted(os.listdir(folders["queue"])) == ["default", "webhooks"]
    assert idle._purge("default") == 50 and idle._size("default") == 0


def test_queue_names_become_plain_folder_names(connect):
    channel, folders = connect
    publisher = channel()
    for name in ("default@host.celery.pidbox", "a/../b", ".hidden"):
        publisher._put(name, {"q": name})
    assert sorted(os.listdir(folders["queue"])) == ["%2Ehidden", "a%2F..%2Fb", "default@host.celery.pidbox"]
    consumer = channel()
    assert [consumer._get(name)["q"] for name in ("a/../b", ".hidden")] == ["a/../b", ".hidden"]


def test_messages_of_the_one_folder_layout_move_into_their_queues(connect):
    channel, folders = connect
    for i in range(3):
        (folders["queue"] / f"{1000 + i}_{uuid.uuid4()}.default.msg").write_text(json.dumps({"n": i}))
    consumer = channel()
    assert [consumer._get("default")["n"] for _ in range(3)] == [0, 1, 2]
    assert os.listdir(folders["queue"]) == ["default"]


def _inotify_fds() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # listdir's own fd, closed by now
            count += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
    return count


def test_a_closed_consumer_leaves_no_inotify_fd(connect):
    """A consumer waits on inotify; a listener that reconnects (robotni/broker/revokes.py) must not pile them up."""
    channel, _ = connect
    before = _inotify_fds()
    for _ in range(3):
        consumer = channel()
        consumer.basic_consume("default", no_ack=True, callback=lambda message: None, consumer_tag="listener")
        with pytest.raises(TimeoutError):
            consumer.connection.client.drain_events(timeout=0.06)
        assert _inotify_fds() == before + 1  # its wait was on inotify, not a sleep
        consumer.connection.client.release()
    assert _inotify_fds() == before


def test_a_closed_consumer_leaves_its_event_loop_without_the_inotify_fd(connect):
    """A worker's consumer is read by Celery's event loop: the fd leaves the loop before it is closed."""
    channel, _ = connect
    before = _inotify_fds()
    consumer = channel()
    client = consumer.connection.client
    loop = Hub()
    try:
        client.transport.register_with_event_loop(client.connection, loop)
        assert _inotify_fds() == before + 1 and len(loop.readers) == 1
        client.release()
        assert _inotify_fds() == before and not loop.readers
    finally:
        loop.close()


def test_an_ack_hands_over_the_next_message_without_waiting_for_the_poll(connect):
    """A worker reserves as many messages as its prefetch allows; the place an ack frees is filled in the event
    loop's next turn (else a pool process that ended its job waited for the polling interval: bench/)."""
    channel, _ = connect
    consumer = channel(polling_interval=60)
    consumer.basic_qos(prefetch_count=1)
    got = []
    consumer.basic_consume("default", no_ack=False, callback=got.append, consumer_tag="worker")
    client = consumer.connection.client
    loop = Hub()
    try:
        client.transport.register_with_event_loop(client.connection, loop)
        consumer.queue_declare("default")
        for n in range(2):
            consumer.basic_publish(consumer.prepare_message(json.dumps({"n": n})), exchange="", routing_key="default")
        client.transport._deliver_ready()  # what a poll does: as many as the prefetch allows
        assert len(got) == 1
        got[0].ack()
        deadline = time.monotonic() + 5  # far below the polling interval
        while len(got) < 2 and time.monotonic() < deadline:
            loop.run_once()
        assert len(got) == 2
    finally:
        client.release()
        loop.close()
