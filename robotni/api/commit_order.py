"""Events of all jobs in commit order: a cursor over them moves only along ids with none missing before them.

Event ids come from a sequence, taken when a transaction writes its event, and on PostgreSQL transactions commit
in any order: a reader past id N would never see an id below N that commits later. So a missing id holds back the
events after it until it shows up, or until GRACE_SECONDS after the gap was first seen: then it rolled back (or the
sequence skipped it) and is passed. SQLite writes one transaction at a time and reuses a rolled-back id, so its
cursor never waits. A job's own events need none of this: its row lock orders them.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from robotni.store import events
from robotni.store.models import Event, utcnow

log = logging.getLogger(__name__)
# Far longer than a transaction that writes events lasts (a status change, or a cascade of them), yet short enough
# that a rolled-back id, the only gap that lasts, holds a stream back only a moment.
GRACE_SECONDS = 5.0
# The newest ids a cursor that starts looks through for a commit still to come: more than the events of a grace.
START_WINDOW = 5000


def start() -> int:
    """Where a cursor over all events starts from now: after the newest event, or before the oldest id missing
    among those of the last grace (by their writers' clocks, so twice it), which may be a commit still to come
    (the committed events after it are then read too: they are seconds old at most)."""
    recent = events.newest(START_WINDOW)
    since = utcnow() - timedelta(seconds=2 * GRACE_SECONDS)
    previous = max(0, recent[-1][0] - START_WINDOW) if recent else 0  # the window's floor
    for event_id, created_at in recent:
        if event_id > previous + 1 and created_at >= since:
            return previous
        previous = event_id
    return previous


class CommitOrder:
    """One cursor's gaps: when each was first seen (by the id of the event that follows it)."""

    def __init__(self) -> None:
        self.held_since: dict[int, float] = {}

    def deliverable(self, cursor: int, found: list[Event], now: float) -> list[Event]:
        """Of found (every event past cursor, of any type, oldest first, read in one go), those that may go out now:
        up to the first missing id still within its grace. Events after later gaps start their grace now too."""
        previous, out, holding = cursor, [], False
        for event in found:
            if event.id > previous + 1:
                since = self.held_since.setdefault(event.id, now)
                if not holding and now - since < GRACE_SECONDS:
                    holding = True
                elif not holding:
                    log.info("event ids %s-%s never committed: passed", previous + 1, event.id - 1)
            if not holding:
                out.append(event)
            previous = event.id
        reached = out[-1].id if out else cursor
        self.held_since = {event_id: t for event_id, t in self.held_since.items() if event_id > reached}
        return out

    def holding(self) -> bool:
        """Whether the last events read were held back (then reading further now is no use)."""
        return bool(self.held_since)
