"""One try of one delivery, and the sweeper that sends what is due: at least once, in order per job and target.

A try is claimed in the store with a lease (the receiver's timeout and a margin): a sender killed mid-try leaves
a claim that expires, and the sweeper sends the delivery again.
"""

from __future__ import annotations

import http.client
import logging
import random
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from robotni import tokens
from robotni.config import Settings
from robotni.errors import ConfigError, UnsafeURL
from robotni.store import deliveries, subscriptions
from robotni.store.deliveries import DELIVERED, FAILED
from robotni.store.models import WebhookDelivery, utcnow
from robotni.webhooks import addresses, post, signing

log = logging.getLogger(__name__)
# Each wait is stretched or shrunk by up to this fraction, so receivers coming back are not hit all at once.
JITTER = 0.1
# A claim outlives the receiver's timeout by this much: only a dead sender's claim ever expires.
LEASE_MARGIN = 5.0
# Deliveries the sweeper sends per round; the rest go next round.
SWEEP_BATCH = 500


def lease_seconds(current: Settings) -> float:
    return current.webhook_timeout + LEASE_MARGIN


def backoff(attempts: int, waits: tuple[float, ...]) -> float | None:
    """Seconds before the next try after `attempts` failed ones (ROBOTNI_WEBHOOK_BACKOFF); None when none is left."""
    if attempts > len(waits):
        return None
    return waits[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)


def _callback_secret(delivery: WebhookDelivery, current: Settings) -> str:
    """The secret of the job's token if it has one, else ROBOTNI_CALLBACK_SECRET; ConfigError when neither is set."""
    name = deliveries.callback_token(delivery.job_id)
    if name is None:
        if not current.callback_secret:
            raise ConfigError("ROBOTNI_CALLBACK_SECRET is not set")
        return current.callback_secret
    secret = tokens.callback_secret(name, current)
    if secret is None:
        raise ConfigError(f"no token named {name!r} with a callback_secret in ROBOTNI_API_TOKENS_FILE")
    return secret


def _destination(delivery: WebhookDelivery, current: Settings) -> tuple[str, str] | str:
    """(url, secret) to send to, or why the delivery cannot be sent at all."""
    if delivery.subscription_id is None:
        try:
            return delivery.url, _callback_secret(delivery, current)
        except ConfigError as exc:
            return str(exc)
    subscription = subscriptions.get(delivery.subscription_id)
    if subscription is None or not subscription.enabled:
        return "the subscription is disabled"
    return subscription.url, subscription.secret


def _try(url: str, secret: str, delivery: WebhookDelivery, current: Settings) -> dict[str, Any]:
    """POST the event; what the delivery log records of the answer."""
    body = (deliveries.payload(delivery.event_id) or "").encode()
    try:
        target = addresses.resolve(url, current.webhook_allow_private)
        sent = signing.headers(secret, f"evt_{delivery.event_id}", int(time.time()), body)
        code, answer = post.send(target, sent, body, current.webhook_timeout)
    except (UnsafeURL, OSError, http.client.HTTPException) as exc:
        return {"last_code": None, "last_body": None, "last_error": str(exc) or type(exc).__name__}
    return {"last_code": code, "last_body": answer.decode(errors="replace"), "last_error": None}


def attempt(delivery_id: int, current: Settings) -> int | None:
    """Try the delivery if it is due and first in line; the id of the next one in line once this one is done."""
    delivery = deliveries.claim(delivery_id, lease_seconds(current))
    if delivery is None:
        return None  # not due, taken, done, or behind an earlier one that will send it on
    destination = _destination(delivery, current)
    if isinstance(destination, str):
        deliveries.settle(delivery, status=FAILED, last_error=destination)
        return deliveries.next_in_line(delivery)
    outcome = _try(*destination, delivery, current)
    code = outcome["last_code"]
    if code is not None and 200 <= code < 300:
        settled = deliveries.settle(delivery, status=DELIVERED, delivered_at=utcnow(), **outcome)
    elif code == http.client.GONE and delivery.subscription_id is not None:
        subscriptions.change(delivery.subscription_id, enabled=False, disabled_reason=f"410 Gone from {destination[0]}")
        settled = deliveries.settle(delivery, status=FAILED, **outcome)
    else:
        wait = backoff(delivery.attempts, current.webhook_backoff)
        later = {"next_try_at": utcnow() + timedelta(seconds=wait)} if wait is not None else {"status": FAILED}
        settled = deliveries.settle(delivery, **later, **outcome)
    if settled is None:
        log.warning("delivery %s: its claim expired during the try; the outcome was not recorded", delivery.id)
        return None
    log.info("delivery %s (try %d): %s", delivery.id, delivery.attempts, code or outcome["last_error"])
    return None if settled.status == "pending" else deliveries.next_in_line(settled)


def sweep(send: Callable[[int], None], stale_seconds: float | None) -> int:
    """Send every due delivery with no message out, or (stale_seconds) one whose message is older than that."""
    now = utcnow()
    stale_before = None if stale_seconds is None else now - timedelta(seconds=stale_seconds)
    ids = deliveries.due(now, stale_before, SWEEP_BATCH)
    for delivery_id in ids:
        send(delivery_id)
    return len(ids)
