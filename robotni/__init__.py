"""Robotni: a job runner for Python scripts. `celery -A robotni` finds the app in `robotni.celery`."""

__version__ = "0.1.0"
