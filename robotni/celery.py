"""The Celery app. Robotni's Celery settings live in robotni.broker.celeryconfig, derived from robotni.config.

A `celeryconfig.py` in the folder a process starts in is layered on top, as Celery's documented override: a
deployment tunes Celery's own knobs there without editing the package.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from typing import Any

from celery import Celery

from robotni import logsetup

OVERRIDE_FILE = "celeryconfig.py"


def local_overrides(folder: Path) -> dict[str, Any]:
    """The settings a `celeryconfig.py` in `folder` defines (lowercase names, as Celery's own), or none."""
    path = folder / OVERRIDE_FILE
    if not path.is_file():
        return {}
    spec = importlib.util.spec_from_file_location("celeryconfig", path)
    assert spec is not None and spec.loader is not None  # a .py file always has a source loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {
        name: value
        for name, value in vars(module).items()
        if name.islower() and not name.startswith("_") and not inspect.ismodule(value) and not callable(value)
    }


# No fixups: Celery's only one is Django's, whose module imports the worker's machinery into every process (the
# API's too) to look for a Django that Robotni never has.
app = Celery(
    "robotni", include=["robotni.worker.tasks", "robotni.worker.lifecycle", "robotni.schedules.beat"], fixups=[]
)
app.config_from_object("robotni.broker.celeryconfig")
app.conf.update(local_overrides(Path.cwd()))
logsetup.install_celery()  # worker and beat log as the API does (JSON, or text at a terminal), with job fields
