"""Celery's revoke and terminate commands, as a worker hears them, also cancel the job in the store.

Celery only flags the id in this worker's memory (robotni/broker/revokes.py says why that is not enough); the
commands keep doing that, and the job row records the cancel so that every worker, and any started later, agrees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery.signals import task_revoked
from celery.worker.control import Panel

from robotni.broker import revokes

log = logging.getLogger(__name__)
Handler = Callable[..., Any]


def _also_cancelling(handler: Handler) -> Handler:
    def handle(state: Any, **arguments: Any) -> Any:
        reply = handler(state, **arguments)
        try:
            revokes.cancel(revokes.revoked_ids({"method": "revoke", "arguments": arguments}))
        except Exception:  # the store is down: the revoked message's discard (below) cancels it again
            log.exception("revoke not recorded in the job store")
        return reply

    handle.__doc__ = handler.__doc__
    return handle


def install() -> None:
    """Wrap Celery's own handlers once; the worker's mailbox reads Panel.data when it starts."""
    for method in revokes.REVOKE_METHODS:
        if not getattr(Panel.data[method], "robotni", False):
            Panel.data[method] = _also_cancelling(Panel.data[method])
            Panel.data[method].robotni = True  # type: ignore[attr-defined]  # marks the wrapper: installed once


@task_revoked.connect
def _discarded(request: Any = None, expired: bool = False, **_: Any) -> None:
    """A message Celery discards as revoked: its job must not stay `queued` (an expired one is not a revoke)."""
    if request is not None and not expired:
        revokes.cancel([request.id])
