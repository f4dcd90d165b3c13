"""The cap on a project's waiting jobs (ROBOTNI_MAX_WAITING_PER_PROJECT), without counting them at every submit.

Counting a project's waiting jobs takes time in proportion to its backlog: with 2,000 waiting on PostgreSQL it was
over a quarter of a submit's time. After a count, a process lets a tenth of the room left through (that submit
included) before it counts again. Up to ten API processes together then let through at most the room they saw,
so the cap holds as it did with a count per submit (requests in flight at the same moment may still pass it
together). Within ten of the cap every submit counts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# The cap holds with up to this many API processes submitting to one project.
SHARE = 10


class WaitingCap:
    def __init__(self, count_waiting: Callable[[str], int]):
        self.count_waiting = count_waiting
        self.allowance: dict[str, int] = {}  # a project's submits let through without a count
        self.lock = threading.Lock()

    def full(self, project: str, cap: int) -> int | None:
        """The number of jobs waiting when the project is at its cap; None when a submit may go on."""
        with self.lock:
            left = self.allowance.pop(project, 0)
            if left > 0:
                if left > 1:
                    self.allowance[project] = left - 1
                return None
        waiting = self.count_waiting(project)
        if waiting >= cap:
            return waiting
        with self.lock:
            self.allowance[project] = max(0, (cap - waiting) // SHARE - 1)  # this submit is the first of the tenth
        return None
