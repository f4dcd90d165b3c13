"""What one job process may use: kernel resource limits, and the unprivileged user it runs as."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import resource
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from robotni.errors import ConfigError

log = logging.getLogger(__name__)


def apply(rlimits: list[tuple[int, int, int]]) -> None:
    """In the child between fork and exec: only setrlimit calls, on values computed before the fork."""
    for which, soft, hard in rlimits:
        resource.setrlimit(which, (soft, hard))


@dataclass(frozen=True)
class JobUser:
    """Whom job processes run as: None fields mean the worker's own user (no switch)."""

    name: str
    uid: int | None = None
    gid: int | None = None

    @property
    def switches(self) -> bool:
        return self.uid is not None


def job_user(configured: str) -> JobUser:
    """ROBOTNI_JOB_USER resolved: empty means `nobody` when the worker is root, else the worker's own user.

    `root` (or the worker's own name) means no switch: jobs can then write the job store; the worker warns.
    """
    me = os.geteuid()
    name = configured or ("nobody" if me == 0 else pwd.getpwuid(me).pw_name)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(f"ROBOTNI_JOB_USER: no user named {name!r}") from None
    if entry.pw_uid == me:
        return JobUser(name)
    # Switching needs root (or CAP_SETUID, CAP_SETGID and CAP_CHOWN); without them each job fails saying so.
    return JobUser(name, entry.pw_uid, entry.pw_gid)


@cache
def resolved_user(configured: str) -> JobUser:
    return job_user(configured)


def _tighten(path: Path, remove: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, os.stat(path).st_mode & ~remove)


def protect(data_dir: Path, broker_dir: Path, database_url: str) -> None:
    """Keep other users (the job user) out: they may pass through the data folder, not list or write it.

    The job store and the broker folder lose every permission for others; the group keeps its own, so a web
    server in the worker's group still works. SQLite gives its -wal and -shm files the database file's mode.
    """
    _tighten(data_dir, 0o006)
    (data_dir / "jobs").mkdir(parents=True, exist_ok=True)
    _tighten(data_dir / "jobs", 0o006)
    _tighten(broker_dir, 0o007)
    if database_url.startswith("sqlite:///"):
        database = Path(database_url.removeprefix("sqlite:///").split("?")[0])
        for suffix in ("", "-wal", "-shm", "-journal"):
            _tighten(database.with_name(database.name + suffix), 0o007)


def check_interpreter_for(user: JobUser, interpreter: str) -> str | None:
    """Why user cannot run interpreter (its folders are closed to it, say), or None when it can."""
    try:
        done = subprocess.run(
            [interpreter, "-I", "-c", "pass"], capture_output=True, timeout=30, **popen_user(user), check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else done.stderr.decode(errors="replace")[-500:]


# util-linux's names for the limits Limits.rlimits() sets, as its `prlimit` command takes them.
PRLIMIT_NAMES = {
    resource.RLIMIT_AS: "as",
    resource.RLIMIT_CPU: "cpu",
    resource.RLIMIT_FSIZE: "fsize",
    resource.RLIMIT_NOFILE: "nofile",
    resource.RLIMIT_NPROC: "nproc",
    resource.RLIMIT_CORE: "core",
}
# Only the system's own copies: the job's PATH must not decide what sets up its sandbox.
SYSTEM_BIN = "/usr/bin:/bin"


@cache
def _util_linux() -> tuple[str, str] | None:
    setpriv, prlimit = shutil.which("setpriv", path=SYSTEM_BIN), shutil.which("prlimit", path=SYSTEM_BIN)
    return (setpriv, prlimit) if setpriv and prlimit else None


def launcher(rlimits: list[tuple[int, int, int]], user: JobUser | None) -> list[str] | None:
    """Commands that set the job up between exec and exec, or None without util-linux (then a preexec_fn does).

    `setpriv` switches to the job user without supplementary groups and sets the parent-death signal after the
    switch (which would clear it); `prlimit` then sets the limits, as the job user, and execs the job. The job
    stays the runner's own child with the runner's pid as its parent, exactly as with a preexec_fn, but
    subprocess can vfork: a fork of a pool process and Python code in the copy cost about 2 ms more per job.
    """
    found = _util_linux()
    if found is None:
        return None
    setpriv, prlimit = found
    argv = [setpriv]
    if user is not None and user.switches:
        argv += [f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups"]
    argv += ["--pdeathsig", "KILL", "--"]
    if rlimits:
        values = [f"--{PRLIMIT_NAMES[which]}={_limit(soft)}:{_limit(hard)}" for which, soft, hard in rlimits]
        argv += [prlimit, *values, "--"]
    return argv


def _limit(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


# The exit codes of util-linux's commands when they cannot exec the next one (not found, not allowed).
LAUNCH_FAILED_CODES = (126, 127)


def launch_failure(code: int | None, stderr_tail: str) -> str | None:
    """The reason a launcher could not start the job's interpreter, or None when the job itself ran."""
    if code in LAUNCH_FAILED_CODES:
        for line in stderr_tail.splitlines():
            if line.startswith(("setpriv: failed to execute", "prlimit: failed to execute")):
                return line.split(": ", 1)[1]
    return None


def popen_user(user: JobUser | None) -> dict[str, Any]:
    """subprocess.Popen arguments that start the job as user, without the worker's supplementary groups."""
    if user is None or not user.switches:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


def read_job_file(path: Path, cap: int) -> bytes | None:
    """A file the job wrote, or None; refuses anything but a regular file (no symlink, FIFO or device)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"{path.name} cannot be read: {exc.strerror} (a symlink?)") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path.name} is not a regular file")
        if info.st_size > cap:
            raise ValueError(f"{path.name} is {info.st_size} bytes, over the {cap} byte limit")
        return f.read(cap + 1)


def prepare_worker(current: Any) -> JobUser:
    """At worker start: whom jobs run as; close the store and broker to that user; say what is wrong."""
    user = resolved_user(current.job_user)
    if not user.switches:
        if os.geteuid() == 0:
            log.warning("jobs run as root (ROBOTNI_JOB_USER=%s): a job can write the job store", user.name)
        return user
    protect(current.data_dir, current.broker_dir, current.database_url)
    problem = check_interpreter_for(user, sys.executable)
    if problem:
        log.error("jobs run as %s, who cannot run %s: %s", user.name, sys.executable, problem.strip())
        log.error("install Robotni where %s can read it, or give types their own venvs", user.name)
    else:
        log.info("jobs run as %s (uid %d)", user.name, user.uid)
    return user
