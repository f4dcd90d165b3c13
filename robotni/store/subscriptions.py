"""Webhook subscriptions: where to POST which events of which projects, and the secret that signs them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from robotni.store.engine import engine
from robotni.store.models import WebhookDelivery, WebhookSubscription, utcnow


def create(url: str, events: list[str], projects: list[str], secret: str) -> WebhookSubscription:
    now = utcnow()
    subscription = WebhookSubscription(
        id=str(uuid.uuid4()), url=url, events=events, projects=projects, secret=secret, enabled=True,
        created_at=now, updated_at=now,
    )  # fmt: skip
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        session.add(subscription)
    return subscription


def get(subscription_id: str) -> WebhookSubscription | None:
    with Session(engine(), expire_on_commit=False) as session:
        return session.get(WebhookSubscription, subscription_id)


def listing() -> list[WebhookSubscription]:
    with Session(engine(), expire_on_commit=False) as session:
        return list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.created_at)))


def change(subscription_id: str, **values: Any) -> WebhookSubscription | None:
    """Apply values (url, events, enabled, secret, disabled_reason); None when it no longer exists."""
    statement = (
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id)
        .values(updated_at=utcnow(), **values)
        .returning(WebhookSubscription)
        .execution_options(synchronize_session=False)
    )
    with Session(engine(), expire_on_commit=False) as session, session.begin():
        return session.execute(statement).scalar_one_or_none()


def remove(subscription_id: str) -> bool:
    """The subscription and its delivery log."""
    with engine().begin() as conn:
        conn.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id))
        return conn.execute(delete(WebhookSubscription).where(WebhookSubscription.id == subscription_id)).rowcount == 1
