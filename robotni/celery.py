"""The Celery app. Its settings live in the top-level `celeryconfig` module, derived from robotni.config."""

from celery import Celery

app = Celery("robotni", include=["robotni.tasks", "robotni.periodic"])
app.config_from_object("celeryconfig")
