"""Webhook subscriptions and their delivery log under /api/worker/webhooks: flask-smorest views, errors only
through `abort`. Delivery itself is the webhooks worker's (robotni/webhooks/delivery.py)."""

from __future__ import annotations

from typing import Any

from flask import g, url_for
from flask.views import MethodView

from robotni.api import auth
from robotni.api.blueprint import Blueprint, abort
from robotni.api.schemas import MAX_ID
from robotni.api.webhook_schemas import (
    DeliveryQuerySchema,
    DeliverySchema,
    WebhookCreateSchema,
    WebhookSchema,
    WebhookSecretSchema,
    WebhookUpdateSchema,
)
from robotni.broker.publish import deliver
from robotni.config import settings
from robotni.errors import UnsafeURL
from robotni.store import deliveries, subscriptions
from robotni.store.events import JOB_EVENT_PREFIX
from robotni.store.models import WebhookDelivery, WebhookSubscription
from robotni.webhooks import addresses, signing

blp = Blueprint("webhooks", __name__, url_prefix="/api/worker", description="Signed HTTP calls when jobs change")


def checked_url(url: str, field: str = "url") -> str:
    """422 unless the URL is http(s) to public addresses (or ROBOTNI_WEBHOOK_ALLOW_PRIVATE=1)."""
    try:
        addresses.resolve(url, settings().webhook_allow_private)
    except UnsafeURL as exc:
        abort(422, errors={"json": {field: [str(exc)]}}, message=str(exc))
    return url


def _covers(subscription: WebhookSubscription) -> bool:
    """A token sees a subscription whose projects it all covers; only an all-projects token one for every project."""
    scope = g.get("projects")
    return scope is None or (bool(subscription.projects) and set(subscription.projects) <= scope)


def subscription_or_404(subscription_id: str) -> WebhookSubscription:
    subscription = subscriptions.get(subscription_id)
    if subscription is None or not _covers(subscription):
        abort(404, message=f"no webhook with id {subscription_id}")
    return subscription


def _shown(delivery: WebhookDelivery, event: str) -> dict[str, Any]:
    """A delivery log row: a schedule.failed event's subject is a schedule, which the store keeps in job_id."""
    shown = {**vars(delivery), "event": event}
    if not event.startswith(JOB_EVENT_PREFIX):
        shown["job_id"], shown["schedule_id"] = None, delivery.job_id
    return shown


def _projects(asked: list[str]) -> list[str]:
    """The asked projects, each covered by the token; none asked: the token's own (every project for '*')."""
    for project in asked:
        auth.require(project)
    scope = g.get("projects")
    return sorted(asked or (scope or []))


@blp.route("/webhooks", operations={"get": "listWebhooks", "post": "createWebhook"})
class Webhooks(MethodView):
    @blp.response(200, WebhookSchema(many=True))
    def get(self) -> list[WebhookSubscription]:
        """List the webhook subscriptions this token covers"""
        return [s for s in subscriptions.listing() if _covers(s)]

    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, WebhookSecretSchema)
    @blp.alt_response(403, description="The token does not cover one of the projects")
    @blp.alt_response(422, description="Not an http(s) URL of a public address, or an unknown event")
    def post(self, body: dict[str, Any]) -> tuple[WebhookSubscription, int, dict[str, str]]:
        """Subscribe a URL to job events; the answer shows its signing secret, this once"""
        projects = _projects(body["projects"])
        url = checked_url(body["url"])
        created = subscriptions.create(url, sorted(set(body["events"])), projects, signing.new_secret())
        return created, 201, {"Location": url_for("webhooks.WebhookById", subscription_id=created.id)}


@blp.route(
    "/webhooks/<string:subscription_id>",
    operations={"get": "getWebhook", "patch": "updateWebhook", "delete": "deleteWebhook"},
)
class WebhookById(MethodView):
    @blp.response(200, WebhookSchema)
    @blp.alt_response(404, description="No such webhook")
    def get(self, subscription_id: str) -> WebhookSubscription:
        """Get a webhook subscription (without its secret)"""
        return subscription_or_404(subscription_id)

    @blp.arguments(WebhookUpdateSchema)
    @blp.response(200, WebhookSchema)
    @blp.alt_response(404, description="No such webhook")
    @blp.alt_response(422, description="Not an http(s) URL of a public address, or an unknown event")
    def patch(self, body: dict[str, Any], subscription_id: str) -> WebhookSubscription:
        """Change a webhook's URL or events, or disable or re-enable it"""
        subscription_or_404(subscription_id)
        if "url" in body:
            checked_url(body["url"])
        if "events" in body:
            body["events"] = sorted(set(body["events"]))
        if body.get("enabled"):
            body["disabled_reason"] = None
        return subscriptions.change(subscription_id, **body) or subscription_or_404(subscription_id)

    @blp.response(204)
    @blp.alt_response(404, description="No such webhook")
    def delete(self, subscription_id: str) -> None:
        """Delete a webhook subscription and its delivery log"""
        subscriptions.remove(subscription_or_404(subscription_id).id)


@blp.route("/webhooks/<string:subscription_id>/rotate-secret", operations={"post": "rotateWebhookSecret"})
class WebhookSecret(MethodView):
    @blp.response(200, WebhookSecretSchema)
    @blp.alt_response(404, description="No such webhook")
    def post(self, subscription_id: str) -> WebhookSubscription:
        """Replace a webhook's signing secret; the answer shows the new one, this once"""
        subscription_or_404(subscription_id)
        changed = subscriptions.change(subscription_id, secret=signing.new_secret())
        return changed or subscription_or_404(subscription_id)


@blp.route("/webhooks/<string:subscription_id>/deliveries", operations={"get": "listWebhookDeliveries"})
class Deliveries(MethodView):
    @blp.arguments(DeliveryQuerySchema, location="query")
    @blp.response(200, DeliverySchema(many=True))
    @blp.alt_response(404, description="No such webhook")
    def get(self, query: dict[str, Any], subscription_id: str) -> list[dict[str, Any]]:
        """A webhook's deliveries, newest first: status, tries, the last answer, the next try"""
        subscription_or_404(subscription_id)
        found = deliveries.of_subscription(subscription_id, query["limit"])
        return [_shown(delivery, event) for delivery, event in found]


@blp.route(
    f"/webhooks/<string:subscription_id>/deliveries/<int(max={MAX_ID}):delivery_id>/redeliver",
    operations={"post": "redeliverWebhook"},
)
class Redeliver(MethodView):
    @blp.response(202, DeliverySchema)
    @blp.alt_response(404, description="No such delivery of this webhook")
    def post(self, subscription_id: str, delivery_id: int) -> tuple[dict[str, Any], int]:
        """Send a delivery again now, with a fresh series of tries"""
        subscription_or_404(subscription_id)
        found = deliveries.redeliver(subscription_id, delivery_id)
        if found is None:
            abort(404, message=f"no delivery {delivery_id} of webhook {subscription_id}")
        deliver(delivery_id)  # the sweeper sends it if this message is lost
        return _shown(*found), 202
