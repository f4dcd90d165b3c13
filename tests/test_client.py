"""robotni.client against the real stack, sync and async; and that it imports with httpx alone."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from robotni.client import ApiError, AsyncClient, Client, WaitTimeout, WebhookVerificationError, verify_webhook
from robotni.webhooks import signing
from tests.stack import ROOT

LINES = "".join(f"line {n}\n" for n in range(5))


@pytest.fixture
def client(stack):
    with Client(stack.url) as opened:
        yield opened


def test_submit_wait_get_list_logs_cancel(client):
    job = client.submit("ticker", {"lines": 5, "every": 0.05}, project="client", idempotency_key="k1")
    assert job.status == "queued" and job.project == "client"
    assert client.submit("ticker", {"lines": 5, "every": 0.05}, project="client", idempotency_key="k1").id == job.id
    followed = "".join(client.logs(job.id, follow=True))
    ended = client.wait(job.id, timeout=30)
    assert (ended.status, ended.ended, followed) == ("completed", True, LINES)
    assert "".join(client.logs(job.id, follow=False)) == LINES
    assert ended.finished_at is not None and client.get(job.id) == ended
    others = [client.submit("helloworld", project="client").id for _ in range(2)]
    assert [j.id for j in client.list(project="client", page_size=1)][:3] == [*reversed(others), job.id]
    sleeper = client.submit("sleeper", {"seconds": 30}, project="client")
    with pytest.raises(WaitTimeout):
        client.wait(sleeper.id, timeout=0.5)
    client.cancel(sleeper.id)
    assert client.wait(sleeper.id, timeout=30).status == "cancelled"


def test_api_errors_carry_the_message_and_field_errors(client):
    with pytest.raises(ApiError) as refused:
        client.submit("add", {"a": "not a number"})
    assert refused.value.status == 422 and refused.value.errors["json"]
    with pytest.raises(ApiError) as missing:
        client.get("no-such-job")
    assert missing.value.status == 404 and "no job" in missing.value.message


def test_the_async_client_does_the_same(stack):
    async def scenario() -> tuple:
        async with AsyncClient(stack.url) as client:
            job = await client.submit("ticker", {"lines": 5, "every": 0.05}, project="aclient")
            followed = "".join([chunk async for chunk in client.logs(job.id)])
            ended = await client.wait(job.id, timeout=30)
            listed = [found.id async for found in client.list(project="aclient", page_size=1)]
            with pytest.raises(ApiError):
                await client.cancel(job.id)  # 409: it already ended
            return ended.status, followed, listed == [job.id], await client.get(job.id) == ended

    assert asyncio.run(scenario()) == ("completed", LINES, True, True)


def test_verify_webhook_accepts_only_what_was_signed():
    secret, body = signing.new_secret(), b'{"type": "job.completed", "data": {}}'
    headers = signing.headers(secret, "evt_1", int(time.time()), body)
    assert verify_webhook(headers, body, secret)["type"] == "job.completed"
    for bad in (body + b" ", b""):
        with pytest.raises(WebhookVerificationError):
            verify_webhook(headers, bad, secret)
    with pytest.raises(WebhookVerificationError):
        verify_webhook({**headers, "webhook-timestamp": str(int(time.time()) - 3600)}, body, secret)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers, body, signing.new_secret())


def test_the_client_imports_without_flask_celery_or_sqlalchemy():
    blocked = ["flask", "flask_smorest", "celery", "kombu", "sqlalchemy", "marshmallow", "alembic"]
    script = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    script += "from robotni.client import Client, AsyncClient, verify_webhook\nprint('ok')"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
