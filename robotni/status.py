"""Job statuses, which of them end a job, and job priorities."""

from enum import Enum


class JobStatus(str, Enum):
    WAITING = "waiting"  # for its parents (depends_on) to end
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
# Not started yet: counted by the waiting cap, cancelled at once by a cancel or a flush.
WAITING = frozenset({JobStatus.WAITING, JobStatus.QUEUED, JobStatus.SCHEDULED})
NOT_ENDED = frozenset(JobStatus) - TERMINAL


class ParentFailure(str, Enum):
    """What a job does when a parent ends other than `completed` (a cancelled parent counts as failed)."""

    CANCEL = "cancel"  # it ends `cancelled`, naming the parent; so does everything under it
    RUN = "run"  # it runs anyway once every parent has ended

    def __str__(self) -> str:
        return self.value


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


class WorkflowStatus(str, Enum):
    RUNNING = "running"  # a step has not ended yet
    COMPLETED = "completed"  # every step completed
    FAILED = "failed"  # a step ended otherwise
    CANCELLED = "cancelled"  # the workflow was cancelled before it ended

    def __str__(self) -> str:
        return self.value
