"""Run one script as its own process group, with limits, a capped log and cancellation.

Never imports Celery: the tasks call it, and it is tested on its own.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import selectors
import shutil
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from robotni import process_spec
from robotni.process_spec import Isolation, check_interpreter
from robotni.runner import confinement, spawn
from robotni.status import JobStatus

EX_TEMPFAIL = 75  # sysexits.h: the script asks to be retried later
STDERR_TAIL_BYTES = 2000
# How often the loop looks at the clock, the cancel flag and the progress file when the script is quiet.
TICK_SECONDS = 0.1
# After the script exits, how long its escaped descendants may keep our pipes open.
PIPE_DRAIN_SECONDS = 1.0
TRUNCATION_MARK = "\n[robotni: output truncated at {} bytes]\n"
# A progress report is a fraction and a short message; anything bigger is not read.
PROGRESS_MAX_BYTES = 64 * 1024
# What a kernel limit's signal means, for the job's error.
LIMIT_SIGNALS: dict[int, str] = {
    signal.SIGXCPU: "CPU time limit (cpu_seconds) reached",
    signal.SIGXFSZ: "file size limit reached",
}


@dataclass(frozen=True)
class RunSpec:
    argv: list[str]  # interpreter first, absolute
    params: Any
    workdir: Path  # holds the job's files; its `scratch` folder is the cwd
    soft_limit: float
    hard_limit: float
    kill_grace: float = 3.0
    log_max_bytes: int = 10 * 1024 * 1024
    result_max_bytes: int = 1024 * 1024
    env: Mapping[str, str] = field(default_factory=dict)
    limits: process_spec.Limits | None = None  # None: the worker's own (tests of the runner alone)
    user: confinement.JobUser | None = None  # None or not switching: the worker's own user
    # FORK: argv[:3] (interpreter, -I, -u) start the type's fork server, whose child runs argv[3:] (the script).
    isolation: Isolation = Isolation.PROCESS
    preload: tuple[str, ...] = ()  # modules the fork server imports once

    # The workdir and what the worker writes in it stay the worker's; the job owns only `scratch` and `out`, so
    # it cannot swap a file the worker (maybe root) later reads or writes for a symlink to something else. Cached:
    # the supervision and the lease keeper ask for them on every tick, and pathlib's joins showed in profiles.
    @cached_property
    def log_path(self) -> Path:
        return self.workdir / "output.log"

    @cached_property
    def out_dir(self) -> Path:
        return self.workdir / "out"

    @cached_property
    def result_path(self) -> Path:
        return self.out_dir / "result.json"

    @cached_property
    def progress_path(self) -> Path:
        return self.out_dir / "progress.json"


@dataclass
class Outcome:
    status: JobStatus
    exit_code: int | None = None
    result: Any = None
    error: str | None = None

    @property
    def wants_retry(self) -> bool:
        return self.exit_code == EX_TEMPFAIL


def script_argv(interpreter: str, script: Path, args: Sequence[str] = ()) -> list[str]:
    # -I: no user site, no PYTHON* variables, no script folder on sys.path tricks; -u: logs stream live.
    return [check_interpreter(interpreter), "-I", "-u", str(script), *args]


def _prepare(spec: RunSpec) -> Path:
    """The job's folders: workdir the worker's (0711), `scratch` and a fresh `out` the job user's (0700)."""
    scratch = spec.workdir / "scratch"
    spec.workdir.mkdir(parents=True, exist_ok=True)
    spec.workdir.chmod(0o711)
    scratch.mkdir(exist_ok=True)
    if spec.out_dir.exists():
        shutil.rmtree(spec.out_dir)  # a retry starts clean; rmtree does not follow the job's symlinks
    spec.out_dir.mkdir()
    user = spec.user
    for folder in (scratch, spec.out_dir):
        if user is not None and user.uid is not None and user.gid is not None:  # a switching user
            os.chown(folder, user.uid, user.gid)
        folder.chmod(0o700)
    return scratch


def _clean_env(spec: RunSpec) -> dict[str, str]:
    scratch = spec.workdir / "scratch"
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(scratch),
        "TMPDIR": str(scratch),
        "ROBOTNI_RESULT": str(spec.result_path),
        "ROBOTNI_PROGRESS": str(spec.progress_path),
        **spec.env,
    }


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


class _Log:
    """Appends output to the log file until the cap, then marks the truncation once.

    The file is made with the first output: a silent job creates none (the logs API reads a missing log as
    empty), and creating a file is the dearest thing the runner does on some file systems.
    """

    def __init__(self, path: Path, cap: int) -> None:
        self.path = path
        self.file: io.FileIO | None = None
        self.cap = cap
        self.written = 0
        self.truncated = False

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def write(self, chunk: bytes) -> None:
        if self.file is None:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            self.file = open(fd, "ab", buffering=0)  # noqa: SIM115  closed in run()
        room = self.cap - self.written
        if room > 0:
            self.file.write(chunk[:room])
            self.written += min(room, len(chunk))
        if len(chunk) > room and not self.truncated:
            self.truncated = True
            self.file.write(TRUNCATION_MARK.format(self.cap).encode())


class _Progress:
    def __init__(self, path: Path, callback: Callable[[dict[str, Any]], None] | None) -> None:
        self.path, self.callback = path, callback
        self.seen: tuple[int, int] | None = None

    def poll(self) -> None:
        if self.callback is None:
            return
        try:
            info = self.path.stat()
            if (info.st_mtime_ns, info.st_size) == self.seen:
                return
            report = json.loads(confinement.read_job_file(self.path, PROGRESS_MAX_BYTES) or b"")
            self.seen = (info.st_mtime_ns, info.st_size)
        except (OSError, ValueError):
            return  # not written yet, or caught mid-write: read it next tick
        if isinstance(report, dict):
            self.callback(report)


def run(
    spec: RunSpec,
    cancel: threading.Event | None = None,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> Outcome:
    """Run the script to its end and say how it ended. Nothing it started outlives this call."""
    cancel = cancel or threading.Event()
    scratch = _prepare(spec)
    rlimits = spec.limits.rlimits() if spec.limits is not None else []
    log = _Log(spec.log_path, spec.log_max_bytes)
    try:
        stdin = spawn.params_file(spec.params)
        try:
            child = spawn.start(
                spec.argv, _clean_env(spec), scratch, rlimits, spec.user, stdin, spec.isolation, spec.preload
            )
        except (OSError, ValueError) as exc:  # not allowed to run it, a NUL in argv: the job fails, not the worker
            return Outcome(JobStatus.FAILED, None, None, _cannot_start(spec, exc))
        finally:
            os.close(stdin)  # the job has its own copy
        try:
            status, tail = _supervise(child, spec, log, cancel, _Progress(spec.progress_path, on_progress))
        finally:
            if child.lost is None:  # a no-op after a normal end; after an error, no orphans
                _kill_group(child.pid, signal.SIGKILL)
            code = child.finish()
    finally:
        log.close()
        spec.workdir.chmod(0o700)  # ended: later jobs of the same user cannot reach its scratch or out
    if child.lost is not None and status is None:
        return Outcome(JobStatus.FAILED, None, None, f"job process lost: {child.lost}\n{tail}".strip())
    failure = confinement.launch_failure(code, tail) if status is None else None
    if failure is not None:  # as subprocess says it when it cannot exec the interpreter itself
        return Outcome(JobStatus.FAILED, None, None, _cannot_start(spec, failure))
    return _outcome(spec, status, code, tail)


def _cannot_start(spec: RunSpec, reason: object) -> str:
    who = f" as user {spec.user.name}" if spec.user is not None and spec.user.switches else ""
    return f"cannot start {spec.argv[0]}{who}: {reason}"


def _supervise(
    child: spawn.Child, spec: RunSpec, log: _Log, cancel: threading.Event, progress: _Progress
) -> tuple[JobStatus | None, str]:
    """Pump output until the script exits; enforce limits and cancellation on the whole group."""
    started = time.monotonic()
    tail: deque[bytes] = deque()
    tail_size = 0
    verdict: JobStatus | None = None
    kill_at = exited_at = None
    with selectors.DefaultSelector() as sel:
        sel.register(child.stdout, selectors.EVENT_READ, "out")
        sel.register(child.stderr, selectors.EVENT_READ, "err")
        if child.exit_fd is not None:  # a served job's exit report wakes the loop at once
            sel.register(child.exit_fd, selectors.EVENT_READ, "exit")
        streams = 2
        while True:
            events = sel.select(TICK_SECONDS) if streams else child.wait_exit(TICK_SECONDS) or []
            for key, _ in events:
                if key.data == "exit":
                    sel.unregister(key.fileobj)  # exited() below reads the report
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    streams -= 1
                    continue
                log.write(chunk)
                if key.data == "err":
                    tail.append(chunk)
                    tail_size += len(chunk)
                    while tail_size - len(tail[0]) >= STDERR_TAIL_BYTES:
                        tail_size -= len(tail.popleft())
            elapsed = time.monotonic() - started
            if child.exited():
                # The script is gone; what it left in its group must not outlive it or hold our pipes open.
                if child.lost is None:  # a lost job was reaped elsewhere: its pid may be someone else's now
                    _kill_group(child.pid, signal.SIGKILL)
                exited_at = exited_at if exited_at is not None else elapsed
                if not streams or elapsed - exited_at > PIPE_DRAIN_SECONDS:
                    break  # done, or a descendant escaped the group (setsid) and still holds a pipe
            elif verdict is None and (cancel.is_set() or elapsed >= spec.soft_limit):
                verdict = JobStatus.CANCELLED if cancel.is_set() else JobStatus.TIMED_OUT
                _kill_group(child.pid, signal.SIGTERM)
                kill_at = elapsed + spec.kill_grace if verdict is JobStatus.CANCELLED else spec.hard_limit
            elif kill_at is not None and elapsed >= kill_at:
                _kill_group(child.pid, signal.SIGKILL)
            progress.poll()
    progress.poll()
    return verdict, b"".join(tail)[-STDERR_TAIL_BYTES:].decode(errors="replace")


def _outcome(spec: RunSpec, verdict: JobStatus | None, code: int, tail: str) -> Outcome:
    if verdict is JobStatus.TIMED_OUT:
        error = f"time limit exceeded ({spec.soft_limit:g} s)"
        return Outcome(verdict, code, None, error)
    if verdict is JobStatus.CANCELLED:
        return Outcome(verdict, code, None, "cancelled")
    if code != 0:
        reason = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        if -code in LIMIT_SIGNALS:
            reason = f"{reason}: {LIMIT_SIGNALS[-code]}"
        return Outcome(JobStatus.FAILED, code, None, f"{reason}\n{tail}".strip())
    try:
        result = _read_result(spec)
    except ValueError as exc:
        return Outcome(JobStatus.FAILED, code, None, str(exc))
    return Outcome(JobStatus.COMPLETED, code, result, None)


def _read_result(spec: RunSpec) -> Any:
    data = confinement.read_job_file(spec.result_path, spec.result_max_bytes)
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ValueError(f"result file is not valid JSON: {exc}") from None
