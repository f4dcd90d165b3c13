"""Celery's `--autoscale max,min`, with one fix: stop no more pool processes while those stopped last still exit.

billiard's `Pool.shrink` signals the pool processes that run no task, and counts each as one process less. A
process it signalled stays in the pool for about a second as it exits (billiard's worker sleeps 1 s after saying
goodbye), and Celery's autoscaler may shrink again within that second, as the last jobs of a burst end one by one:
billiard then picks the exiting process a second time and counts it twice, and the pool keeps one process more than
it believes it has, until it next grows. Waiting for the exits first keeps the count true.
"""

from __future__ import annotations

from typing import Any

from celery.worker import autoscale


class Autoscaler(autoscale.Autoscaler):
    def scale_down(self, n: int) -> Any:
        if len(self.pool.info.get("processes", ())) > self.processes:  # prefork (threads have none to wait for)
            return None  # processes stopped earlier are still exiting: look again at the next tick
        return super().scale_down(n)
