"""The Celery app. Its settings live in the top-level `celeryconfig` module, derived from robotni.config."""

from celery import Celery

from robotni import logs

app = Celery("robotni", include=["robotni.tasks", "robotni.periodic"])
app.config_from_object("celeryconfig")
logs.install_celery()  # worker and beat log as the API does (JSON, or text at a terminal), with job fields
