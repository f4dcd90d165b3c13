"""What a job process is, as values both sides share: its isolation, its resource limits, its interpreter.

The submit side (API, schedules) checks requests against these and the runner applies them; both import this
module, which imports only the standard library and robotni.errors.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

from robotni.errors import ConfigError, InterpreterError


class Isolation(str, Enum):
    PROCESS = "process"  # a new interpreter per job (the default)
    FORK = "fork"  # a child of the type's fork server, which has its preload modules imported


MIB = 1024 * 1024
# Enough for a Python job with numpy and a few threads (glibc reserves 64 MiB of address space per malloc arena);
# a job that needs more says so with `memory_mb` in its [tool.robotni.limits].
DEFAULT_MEMORY_MB = 2048
# CPU time is not wall time: the type's time limits bound wall time; this stops a spinning job's children too.
DEFAULT_CPU_SECONDS = 3600
# No single file a job writes (in its scratch folder) may fill the disk.
DEFAULT_FILE_SIZE_MB = 1024
DEFAULT_OPEN_FILES = 1024
# Processes and threads of the job user (RLIMIT_NPROC counts per user): a fork bomb stops here.
DEFAULT_PROCESSES = 256


@dataclass(frozen=True)
class Limits:
    memory_mb: int = DEFAULT_MEMORY_MB
    cpu_seconds: int = DEFAULT_CPU_SECONDS
    file_size_mb: int = DEFAULT_FILE_SIZE_MB
    open_files: int = DEFAULT_OPEN_FILES
    processes: int = DEFAULT_PROCESSES

    def overridden(self, table: Mapping[str, Any]) -> Limits:
        """These limits with a worker type's `[tool.robotni.limits]` values; ConfigError names a bad key."""
        known = {f.name for f in fields(self)}
        unknown = set(table) - known
        if unknown:
            raise ConfigError(f"unknown limits keys: {', '.join(sorted(unknown))}")
        for key, value in table.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"limits.{key} must be a positive whole number, not {value!r}")
        return replace(self, **table)

    def rlimits(self) -> list[tuple[int, int, int]]:
        """(resource, soft, hard): hard is where the job cannot raise them back; no core dumps.

        CPU: SIGXCPU at the limit (the job's error says so), SIGKILL a second later if it is ignored.
        """
        triples = [
            (resource.RLIMIT_AS, self.memory_mb * MIB, self.memory_mb * MIB),
            (resource.RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds + 1),
            (resource.RLIMIT_FSIZE, self.file_size_mb * MIB, self.file_size_mb * MIB),
            (resource.RLIMIT_NOFILE, self.open_files, self.open_files),
            (resource.RLIMIT_NPROC, self.processes, self.processes),
            (resource.RLIMIT_CORE, 0, 0),
        ]
        return [(which, _within_hard(which, soft), _within_hard(which, hard)) for which, soft, hard in triples]


def _within_hard(which: int, value: int) -> int:
    """A limit may only be lowered without privilege: never ask for more than the worker's own hard limit."""
    hard = resource.getrlimit(which)[1]
    return value if hard == resource.RLIM_INFINITY else min(value, hard)


def from_env(env: Mapping[str, str]) -> Limits:
    """The default limits, each overridable by `ROBOTNI_JOB_<KEY>` (ROBOTNI_JOB_MEMORY_MB, ...)."""
    table = {}
    for f in fields(Limits):
        raw = env.get(f"ROBOTNI_JOB_{f.name.upper()}")
        if raw is not None:
            try:
                table[f.name] = int(raw)
            except ValueError:
                raise ConfigError(f"ROBOTNI_JOB_{f.name.upper()} must be a whole number, not {raw!r}") from None
    return Limits().overridden(table)


def check_interpreter(path: str) -> str:
    """Refuse a relative path or a shell-script shim: every job would pay its start-up and PATH games."""
    if not os.path.isabs(path):
        raise InterpreterError(f"interpreter path must be absolute: {path!r}")
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError as exc:
        raise InterpreterError(f"interpreter {path!r} cannot be read: {exc.strerror}") from None
    if head == b"#!" or not os.access(path, os.X_OK):
        raise InterpreterError(f"interpreter {path!r} is a script or not executable (a shim?)")
    return path
