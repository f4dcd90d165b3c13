"""Checking a webhook Robotni sent (Standard Webhooks), with the same code that signs it."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from robotni.errors import RobotniError
from robotni.webhooks.signing import matches

# A message older or newer than this is refused: a captured delivery cannot be replayed later.
TOLERANCE_SECONDS = 300


class WebhookVerificationError(RobotniError):
    """Missing headers, a timestamp out of tolerance, or no matching signature."""


def verify_webhook(headers: Mapping[str, str], body: bytes | str, secret: str) -> dict[str, Any]:
    """The delivered event ({"type", "timestamp", "data"}) if it is signed with secret; else the error."""
    lower = {name.lower(): value for name, value in headers.items()}
    msg_id, stamp, signature = (lower.get(f"webhook-{n}") for n in ("id", "timestamp", "signature"))
    if not (msg_id and stamp and signature):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a number") from None
    if abs(time.time() - timestamp) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("webhook-timestamp is too old or too new")
    raw = body.encode() if isinstance(body, str) else body
    if not matches(secret, msg_id, timestamp, raw, signature):
        raise WebhookVerificationError("no matching signature")
    event: dict[str, Any] = json.loads(raw)
    return event
