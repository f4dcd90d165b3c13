"""Every setting Robotni reads, from ``ROBOTNI_*`` environment variables, with embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from enum import Enum
from functools import cache
from pathlib import Path

from robotni.process_spec import Limits
from robotni.process_spec import from_env as limits_from_env


class WorkerPool(str, Enum):
    """Celery's pool for the job queues' workers (ROBOTNI_WORKER_POOL)."""

    # A job is a process of its own: its pool slot only waits on it, and threads share one interpreter's memory.
    THREADS = "threads"
    # A process per slot: each holds its own copy of the worker's memory.
    PREFORK = "prefork"


# Relative to the working directory, so `honcho start` in a checkout needs no setup.
DEFAULT_DATA_DIR = "./var"
# kombu's filesystem transport, in the data folder; a host in the URL spares every connection kombu's warning.
DEFAULT_BROKER_URL = "filesystem://localhost/"
DEFAULT_WORKERS_DIR = "./workers"
# Measured (python -m bench, python -m bench.idle): kombu's default 1 s makes a lone job take ~1 s; 50 ms
# brings submit→completed to ~43 ms for a 17 ms script and costs an idle worker 0.4% of a core.
DEFAULT_POLL_INTERVAL = 0.05
# Messages each pool process reserves. 1 leaves every process idle while the next message is fetched (33% of
# the spawn floor in bench/); 2 reaches 60%, at the price of at most one job waiting behind a long one.
DEFAULT_PREFETCH_MULTIPLIER = 2
# A chatty job must not fill the disk; 10 MiB is far beyond what a person reads in a browser.
DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024
# Results live in the job row; keep rows small enough for fast polling.
DEFAULT_RESULT_MAX_BYTES = 1024 * 1024
# Long enough for a script to flush and exit on SIGTERM, short enough that cancel lands within 5 s.
DEFAULT_KILL_GRACE = 3.0
# Requests over this are refused with 413 before they are parsed.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
# SQLite writers wait this long for the lock; a submit that still cannot write answers 503.
DEFAULT_DB_BUSY_TIMEOUT = 10.0
# A fanout queue (a stopped worker's pidbox, a stopped Flower's events) unread this long is dead: its binding
# and files go. Long enough that a busy but live consumer is never mistaken for a dead one.
DEFAULT_BROKER_STALE_SECONDS = 300.0
# A stopping worker lets its jobs run this long, then requeues them (systemd's default stop timeout is 90 s).
DEFAULT_SHUTDOWN_GRACE = 60.0
# A job whose worker dies under it (SIGKILL, OOM, a lost host) runs again this often before the loss counts against
# its own retries: the script did nothing wrong, but one that kills every worker it runs on must still end.
DEFAULT_LOST_ATTEMPTS = 2
# Repeating a POST with the same Idempotency-Key within this window returns the first job.
DEFAULT_IDEMPOTENCY_SECONDS = 24 * 3600
# A running job renews its lease and reads its cancel mark this often: cancel lands within beat + grace.
DEFAULT_HEARTBEAT_SECONDS = 1.0
# A lease outlives this many missed beats, so a slow database write (SQLite waits up to 10 s) loses nothing.
LEASE_BEATS = 15
# Finished jobs, their attempts, logs and folders stay this long for people to look at; then cleanup removes them.
DEFAULT_RETENTION_DAYS = 7.0
# How often beat sends the cleanup task: old jobs need not go the minute they are due, so a few minutes will do.
DEFAULT_CLEANUP_SECONDS = 300.0
# How often beat sends the task that creates due schedule jobs: a job starts within about this of its time.
SCHEDULE_TICK_SECONDS = 1.0
# A worker type's environment build (venv + install) is stopped after this; large AI stacks take minutes.
DEFAULT_ENV_BUILD_TIMEOUT = 900.0
# Each worker's reaper looks for lost jobs, lost messages and due retries every this many beats.
REAP_BEATS = 2
# A queued job unclaimed this many beats while a worker of its queue is free has lost its message.
REPUBLISH_BEATS = 10
# Per API token: a runaway client is slowed down long before the machine is; a polling page stays far below.
DEFAULT_RATE_PER_SECOND = 50.0
DEFAULT_RATE_BURST = 100
# Waiting (queued + scheduled) jobs per project: one project's flood cannot fill the store and starve the others.
DEFAULT_MAX_WAITING_PER_PROJECT = 10_000
# Running jobs per project across every queue; 0: no cap (a type's own `concurrency` still applies).
DEFAULT_PROJECT_MAX_RUNNING = 0
# Jobs a worker runs at once: one per CPU keeps a machine busy with CPU-bound scripts without oversubscribing it.
DEFAULT_WORKER_CONCURRENCY = os.cpu_count() or 1
# Seconds a worker may run no job before it exits on its own; 0: never (a supervisor scales to zero with it).
DEFAULT_WORKER_IDLE_EXIT = 0.0
# A webhook receiver gets this long to answer (Standard Webhooks suggests 15 s at most); then the try failed.
DEFAULT_WEBHOOK_TIMEOUT = 10.0
# Waits after each failed webhook try, about a day in all (Standard Webhooks' own schedule); then it has failed.
DEFAULT_WEBHOOK_BACKOFF = "5,60,300,1800,7200,18000,36000,50400"
# Loopback only: without tokens the API answers only this machine anyway (robotni/api/auth.py).
DEFAULT_BIND = "127.0.0.1:8000"
# A person waits for a plan (the planner page, POST /planner/plan): a chat model writes a short JSON plan in a few
# seconds, and past this the rules answer instead (robotni/planner/model.py).
DEFAULT_PLANNER_LLM_TIMEOUT = 10.0
# Log lines: JSON objects (one per line, for collectors), text (for a person), or auto: text when stderr is a
# terminal, JSON otherwise (a service manager, honcho, a container runtime).
LOG_FORMATS = ("auto", "json", "text")
# Settings that are never printed (`robotni config`) or logged.
SECRET_SETTINGS = {"api_tokens", "flower_basic_auth", "callback_secret", "planner_llm_key", "job_api_token"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    workers_dir: Path
    scripts_dir: Path
    venvs_dir: Path
    database_url: str
    broker_url: str
    poll_interval: float
    prefetch_multiplier: int
    log_max_bytes: int
    result_max_bytes: int
    kill_grace: float
    max_request_bytes: int
    heartbeat_seconds: float
    shutdown_grace: float
    lost_attempts: int
    broker_stale_seconds: float
    db_busy_timeout: float
    idempotency_seconds: float
    bind: str
    api_url: str
    api_tokens: str
    api_tokens_file: Path | None
    metrics_public: bool
    cors_origins: tuple[str, ...]
    rate_per_second: float
    rate_burst: int
    max_waiting_per_project: int
    project_max_running: int
    worker_concurrency: int
    worker_pool: WorkerPool
    worker_idle_exit: float
    job_user: str
    job_limits: Limits
    flower_basic_auth: str
    flower_bind: str
    env_build_timeout: float
    retention_days: float
    cleanup_seconds: float
    schedules_file: Path | None
    log_format: str
    webhook_timeout: float
    webhook_allow_private: bool
    webhook_backoff: tuple[float, ...]
    callback_secret: str
    job_api_token: str
    planner_llm_url: str
    planner_llm_key: str
    planner_llm_model: str
    planner_llm_timeout: float

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def built_envs_dir(self) -> Path:
        return self.data_dir / "envs"

    @property
    def broker_dir(self) -> Path:
        return self.data_dir / "broker"

    @property
    def metrics_dir(self) -> Path:
        """prometheus_client's multiprocess files: the API latency of every gunicorn worker (robotni/api/metrics.py)."""
        return self.data_dir / "prometheus"

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")

    @property
    def lease_seconds(self) -> float:
        return LEASE_BEATS * self.heartbeat_seconds

    @property
    def reap_seconds(self) -> float:
        return REAP_BEATS * self.heartbeat_seconds

    @property
    def republish_after(self) -> float:
        return REPUBLISH_BEATS * self.heartbeat_seconds


def _env(name: str, default: str) -> str:
    return os.environ.get(f"ROBOTNI_{name}", default)


def _dir(name: str, default: str | Path) -> Path:
    return Path(_env(name, str(default))).expanduser().resolve()


def load_settings() -> Settings:
    """Read the environment now; `settings()` caches the result per process."""
    data_dir = _dir("DATA_DIR", DEFAULT_DATA_DIR)
    return Settings(
        data_dir=data_dir,
        workers_dir=_dir("WORKERS_DIR", DEFAULT_WORKERS_DIR),
        scripts_dir=_dir("SCRIPTS_DIR", data_dir / "scripts"),
        venvs_dir=_dir("VENVS_DIR", data_dir / "venvs"),
        database_url=_env("DATABASE_URL", f"sqlite:///{data_dir / 'robotni.db'}"),
        broker_url=_env("BROKER_URL", DEFAULT_BROKER_URL),
        poll_interval=float(_env("POLL_INTERVAL", str(DEFAULT_POLL_INTERVAL))),
        prefetch_multiplier=int(_env("PREFETCH_MULTIPLIER", str(DEFAULT_PREFETCH_MULTIPLIER))),
        log_max_bytes=int(_env("LOG_MAX_BYTES", str(DEFAULT_LOG_MAX_BYTES))),
        result_max_bytes=int(_env("RESULT_MAX_BYTES", str(DEFAULT_RESULT_MAX_BYTES))),
        kill_grace=float(_env("KILL_GRACE", str(DEFAULT_KILL_GRACE))),
        max_request_bytes=int(_env("MAX_REQUEST_BYTES", str(DEFAULT_MAX_REQUEST_BYTES))),
        heartbeat_seconds=float(_env("HEARTBEAT_SECONDS", str(DEFAULT_HEARTBEAT_SECONDS))),
        broker_stale_seconds=float(_env("BROKER_STALE_SECONDS", str(DEFAULT_BROKER_STALE_SECONDS))),
        shutdown_grace=float(_env("SHUTDOWN_GRACE", str(DEFAULT_SHUTDOWN_GRACE))),
        lost_attempts=int(_env("LOST_ATTEMPTS", str(DEFAULT_LOST_ATTEMPTS))),
        db_busy_timeout=float(_env("DB_BUSY_TIMEOUT", str(DEFAULT_DB_BUSY_TIMEOUT))),
        idempotency_seconds=float(_env("IDEMPOTENCY_SECONDS", str(DEFAULT_IDEMPOTENCY_SECONDS))),
        bind=_env("BIND", DEFAULT_BIND),
        # Where the API is, seen from this machine: for the `robotni` command and `api = true` worker types.
        api_url=_env("API_URL", f"http://{_env('BIND', DEFAULT_BIND)}").rstrip("/"),
        api_tokens=_env("API_TOKENS", ""),
        api_tokens_file=_dir("API_TOKENS_FILE", "") if _env("API_TOKENS_FILE", "") else None,
        metrics_public=_env("METRICS_PUBLIC", "0").lower() in ("1", "true", "yes"),
        cors_origins=tuple(o.strip().rstrip("/") for o in _env("CORS_ORIGINS", "").split(",") if o.strip()),
        rate_per_second=float(_env("RATE_PER_SECOND", str(DEFAULT_RATE_PER_SECOND))),
        rate_burst=int(_env("RATE_BURST", str(DEFAULT_RATE_BURST))),
        max_waiting_per_project=int(_env("MAX_WAITING_PER_PROJECT", str(DEFAULT_MAX_WAITING_PER_PROJECT))),
        project_max_running=int(_env("PROJECT_MAX_RUNNING", str(DEFAULT_PROJECT_MAX_RUNNING))),
        worker_concurrency=int(_env("WORKER_CONCURRENCY", str(DEFAULT_WORKER_CONCURRENCY))),
        worker_pool=WorkerPool(_env("WORKER_POOL", WorkerPool.THREADS)),
        worker_idle_exit=float(_env("WORKER_IDLE_EXIT", str(DEFAULT_WORKER_IDLE_EXIT))),
        job_user=_env("JOB_USER", ""),
        job_limits=limits_from_env(os.environ),
        flower_basic_auth=_env("FLOWER_BASIC_AUTH", ""),
        flower_bind=_env("FLOWER_BIND", "127.0.0.1:5555"),
        env_build_timeout=float(_env("ENV_BUILD_TIMEOUT", str(DEFAULT_ENV_BUILD_TIMEOUT))),
        retention_days=float(_env("RETENTION_DAYS", str(DEFAULT_RETENTION_DAYS))),
        cleanup_seconds=float(_env("CLEANUP_SECONDS", str(DEFAULT_CLEANUP_SECONDS))),
        schedules_file=_dir("SCHEDULES_FILE", "") if _env("SCHEDULES_FILE", "") else None,
        log_format=_env("LOG_FORMAT", "auto").lower(),
        webhook_timeout=float(_env("WEBHOOK_TIMEOUT", str(DEFAULT_WEBHOOK_TIMEOUT))),
        webhook_allow_private=_env("WEBHOOK_ALLOW_PRIVATE", "0").lower() in ("1", "true", "yes"),
        webhook_backoff=tuple(
            float(s) for s in _env("WEBHOOK_BACKOFF", DEFAULT_WEBHOOK_BACKOFF).split(",") if s.strip()
        ),
        callback_secret=_env("CALLBACK_SECRET", ""),
        job_api_token=_env("JOB_API_TOKEN", ""),
        planner_llm_url=_env("PLANNER_LLM_URL", ""),
        planner_llm_key=_env("PLANNER_LLM_KEY", ""),
        planner_llm_model=_env("PLANNER_LLM_MODEL", ""),
        planner_llm_timeout=float(_env("PLANNER_LLM_TIMEOUT", str(DEFAULT_PLANNER_LLM_TIMEOUT))),
    )


@cache
def settings() -> Settings:
    return load_settings()


def reset() -> None:
    """Forget this process's settings: the next `settings()` reads the environment again (tests, tools)."""
    settings.cache_clear()


def describe() -> list[tuple[str, str]]:
    """(variable, current value) pairs, for `robotni config`."""
    current = settings()
    return [
        (
            f"ROBOTNI_{f.name.upper()}",
            "(set)" if f.name in SECRET_SETTINGS and getattr(current, f.name) else str(getattr(current, f.name)),
        )
        for f in fields(current)
    ]
