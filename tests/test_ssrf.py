"""No webhook to a private address: refused with 422 when subscribing, and again when delivering."""

from __future__ import annotations

import dataclasses

import pytest

from robotni import config
from robotni.errors import UnsafeURL
from robotni.store import claims, creation, deliveries, events, subscriptions
from robotni.webhooks import addresses, delivery
from tests.stack import Stack
from tests.webhook_receiver import Receiver

REFUSED = [
    "http://127.0.0.1/hook",
    "http://localhost:8080/hook",  # a name that resolves to a private address
    "http://10.1.2.3/",
    "http://172.16.0.1/",
    "http://192.168.0.10/",
    "http://169.254.169.254/latest/meta-data/",  # link-local: cloud metadata
    "http://224.0.0.1/",  # multicast
    "http://0.0.0.0/",  # unspecified
    "http://100.64.0.1/",  # carrier-grade NAT: not global
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fd00::1]/",
    "http://[ff02::1]/",
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://2130706433/",  # decimal 127.0.0.1
    "http://0177.0.0.1/",  # octal 127.0.0.1
    "http://0x7f.1/",  # hex, short form
    "ftp://example.com/",
    "file:///etc/passwd",
    "http://user:pw@example.com/",
]


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """The API alone, with the address check on (ROBOTNI_WEBHOOK_ALLOW_PRIVATE unset)."""
    stack = Stack(tmp_path_factory.mktemp("strict"), {"ROBOTNI_CALLBACK_SECRET": "whsec_c2VjcmV0c2VjcmV0c2VjcmV0"})
    try:
        stack.start_web()
        yield stack
    finally:
        stack.stop()


@pytest.mark.parametrize("url", REFUSED)
def test_a_private_or_odd_url_is_refused_when_subscribing(strict, url):
    answer = strict.http.post(strict.api("/webhooks"), json={"url": url, "events": ["job.completed"]})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"]["json"]["url"]


def test_a_private_callback_url_is_refused(strict):
    answer = strict.http.post(strict.api("/jobs"), json={"type": "helloworld", "callback_url": "http://2130706433/"})
    assert answer.status_code == 422 and "callback_url" in answer.json()["errors"]["json"]


def test_public_addresses_pass():
    assert addresses.public("93.184.215.14") and addresses.public("2606:4700::1111")
    with pytest.raises(UnsafeURL):
        addresses.resolve("http://no-such-host.invalid/", allow_private=False)


def test_delivery_checks_the_address_again(store):
    """A subscription that got in (allowed then, or a name that now resolves elsewhere) sends nothing private."""
    receiver = Receiver().start()
    try:
        subscription = subscriptions.create(receiver.url, ["job.started"], [], "whsec_c2VjcmV0c2VjcmV0c2VjcmV0")
        job, _ = creation.create(type="t", project="p", params={}, queue="default", max_attempts=1, venv=None)
        claims.claim_next("default", "w", 10, claims.Caps())
        [pending] = deliveries.of_subscription(subscription.id, 10)
        strict = dataclasses.replace(config.settings(), webhook_allow_private=False)
        delivery.attempt(pending[0].id, strict)
        [(tried, _)] = deliveries.of_subscription(subscription.id, 10)
        assert "non-public" in tried.last_error and tried.status == "pending" and not receiver.calls
        assert events.after(job.id, None, 0, 10)[0].type == "job.started"
    finally:
        receiver.stop()
