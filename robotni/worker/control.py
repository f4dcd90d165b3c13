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
    """The cancel is recorded first: Celery's `terminate` then makes the jobs of this worker read their cancel marks
    at once (robotni/worker/pool.py). The slot that took the revoked task may be running another job (a message
    wakes a slot for the best job of its queue), which goes on; the revoked job stops wherever it runs, at its
    worker's next look at the mark."""

    def handle(state: Any, **arguments: Any) -> Any:
        try:
            revokes.cancel(revokes.revoked_ids({"method": "revoke", "arguments": arguments}))
        except Exception:  # the store is down: the revoked message's discard (below) cancels it again
            log.exception("revoke not recorded in the job store")
        return handler(state, **arguments)

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
