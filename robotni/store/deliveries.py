"""Webhook deliveries: claimed by update with a lease (a killed sender's claim expires), one at a time per job and
target so a receiver gets a job's events in order, each either delivered or, after its last try, failed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from robotni.store.engine import engine
from robotni.store.events import PENDING
from robotni.store.models import Event, Job, WebhookDelivery, utcnow

DELIVERED = "delivered"
FAILED = "failed"


def _first_in_line() -> ColumnElement[bool]:
    """No earlier delivery of the same job to the same target is still pending."""
    earlier = aliased(WebhookDelivery)
    return ~exists().where(
        earlier.job_id == WebhookDelivery.job_id,
        earlier.subscription_id.is_not_distinct_from(WebhookDelivery.subscription_id),
        earlier.id < WebhookDelivery.id,
        earlier.status == PENDING,
    )


def _ready(now: datetime) -> list[ColumnElement[bool]]:
    return [
        WebhookDelivery.status == PENDING,
        WebhookDelivery.next_try_at <= now,
        or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
        _first_in_line(),
    ]


def _update(statement: Any) -> WebhookDelivery | None:
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        row: WebhookDelivery | None = session.execute(
            statement.returning(WebhookDelivery).execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        return row


def claim(delivery_id: int, lease_seconds: float) -> WebhookDelivery | None:
    """The delivery for one try by this caller; None when it is not due, taken, done, or waits for an earlier one."""
    now = utcnow()
    return _update(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, *_ready(now))
        # published_at: its message is used up, so if this claim expires the sweeper sends another at once.
        .values(
            claimed_until=now + timedelta(seconds=lease_seconds),
            attempts=WebhookDelivery.attempts + 1,
            published_at=None,
        )
    )


def settle(delivery: WebhookDelivery, **values: Any) -> WebhookDelivery | None:
    """Record a try's outcome if this claim still holds (delivered, failed, or pending with its next try)."""
    return _update(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery.id,
            WebhookDelivery.status == PENDING,
            WebhookDelivery.claimed_until == delivery.claimed_until,
        )
        .values(claimed_until=None, **values)
    )


def payload(event_id: int) -> str | None:
    with engine().connect() as conn:
        return conn.execute(select(Event.payload).where(Event.id == event_id)).scalar()


def callback_token(job_id: str) -> str | None:
    """The token whose callback secret signs the job's callback (None: ROBOTNI_CALLBACK_SECRET)."""
    with engine().connect() as conn:
        return conn.execute(select(Job.callback_token).where(Job.id == job_id)).scalar()


def next_in_line(delivery: WebhookDelivery) -> int | None:
    """The following pending delivery of the same job to the same target, now free to go."""
    query = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.job_id == delivery.job_id,
            WebhookDelivery.subscription_id.is_not_distinct_from(delivery.subscription_id),
            WebhookDelivery.id > delivery.id,
            WebhookDelivery.status == PENDING,
        )
        .order_by(WebhookDelivery.id)
        .limit(1)
    )
    with engine().connect() as conn:
        return conn.execute(query).scalar()


def due(now: datetime, stale_before: datetime | None, limit: int) -> list[int]:
    """Deliveries ready to try with no message out (or one older than stale_before); marked as sent now."""
    unsent: ColumnElement[bool] = WebhookDelivery.published_at.is_(None)
    if stale_before is not None:
        unsent = or_(unsent, WebhookDelivery.published_at < stale_before)
    query = select(WebhookDelivery.id).where(*_ready(now), unsent).order_by(WebhookDelivery.id).limit(limit)
    with engine().begin() as conn:
        ids = list(conn.execute(query).scalars())
        if ids:
            conn.execute(update(WebhookDelivery).where(WebhookDelivery.id.in_(ids)).values(published_at=now))
    return ids


def of_subscription(subscription_id: str, limit: int) -> list[tuple[WebhookDelivery, str]]:
    """A subscription's deliveries, newest first, each with its event's type."""
    query = (
        select(WebhookDelivery, Event.type)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.subscription_id == subscription_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    with Session(engine(), expire_on_commit=False) as session:
        return [(delivery, type_) for delivery, type_ in session.execute(query)]


def redeliver(subscription_id: str, delivery_id: int) -> tuple[WebhookDelivery, str] | None:
    """Send a delivery again now, with a fresh series of tries (the caller sends its message); with its event type."""
    now = utcnow()
    delivery = _update(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.subscription_id == subscription_id)
        .values(status=PENDING, attempts=0, next_try_at=now, claimed_until=None, published_at=now)
    )
    if delivery is None:
        return None
    with engine().connect() as conn:
        type_ = conn.execute(select(Event.type).where(Event.id == delivery.event_id)).scalar()
    return None if type_ is None else (delivery, type_)  # None: the retention took it since, with its event
