"""Job statuses, which of them end a job, and job priorities."""

from enum import Enum


class JobStatus(str, Enum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    def __str__(self) -> str:  # the value, not "JobStatus.QUEUED": logs, f-strings and marshmallow show it
        return self.value

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT})
WAITING = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED})


class Priority(str, Enum):
    """How soon a waiting job is taken: every urgent job of a queue before any normal one, normal before batch."""

    URGENT = "urgent"
    NORMAL = "normal"
    BATCH = "batch"

    def __str__(self) -> str:
        return self.value

    @property
    def rank(self) -> int:
        """Its place in the claim order (robotni/store/claims.py): lower is taken first."""
        return PRIORITY_ORDER.index(self)


PRIORITY_ORDER = (Priority.URGENT, Priority.NORMAL, Priority.BATCH)
