"""Robotni's Python client: `pip install robotni[client]` (httpx); it imports no Flask, Celery or SQLAlchemy.

from robotni.client import Client
robotni = Client("http://127.0.0.1:8000", token="…")
job = robotni.wait(robotni.submit("fakejob", {"delay_seconds": 2}).id, timeout=30)
"""

from robotni.client.aio import AsyncClient
from robotni.client.models import ApiError, Job, WaitTimeout
from robotni.client.sync import Client
from robotni.client.verify import WebhookVerificationError, verify_webhook

__all__ = ["ApiError", "AsyncClient", "Client", "Job", "WaitTimeout", "WebhookVerificationError", "verify_webhook"]
