"""robotni/broker/redistransport.py: kombu's Redis transport with one client a channel for its commands."""

from __future__ import annotations

import pytest
from kombu import Connection, Queue

from tests import backends


@pytest.fixture
def channel():
    if not backends.REDIS:
        pytest.skip("set ROBOTNI_TEST_REDIS_URL to run it")
    backend = backends.redis_only("redis")
    conn = Connection(backend.env["ROBOTNI_BROKER_URL"], transport="robotni.broker.redistransport:Transport")
    try:
        yield conn.channel()
    finally:
        conn.release()
        backend.release()


def test_publishes_acks_and_reservations_share_one_client_until_the_pool_is_new(channel):
    queue = Queue("q", routing_key="q")(channel)
    queue.declare()
    producer = channel.connection.client.Producer(channel)
    with channel.conn_or_acquire() as first:
        for n in range(3):
            producer.publish({"n": n}, routing_key="q")
    received = []
    for _ in range(3):
        message = queue.get()
        received.append(message.payload["n"])
        message.ack()  # the ack and the reservation before it (kombu's QoS) go through the client too
    assert received == [0, 1, 2] and queue.get() is None
    with channel.conn_or_acquire() as again:
        assert again is first
    channel._disconnect_pools()  # what kombu does after a lost connection: new pools, so a client on the new one
    with channel.conn_or_acquire() as after:
        assert after is not first and after.connection_pool is channel.pool
        assert after.ping()
