"""How a job's process starts: a child of its type's fork server, or a new interpreter of the runner's own.

The new interpreter is set up between fork and exec (job user, parent-death signal, resource limits) by
util-linux's `setpriv` and `prlimit` where they are installed, so subprocess can vfork the (large) pool process;
elsewhere by a `preexec_fn`, which makes subprocess fork it and run Python in the copy (about 2 ms more a job).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from robotni.process_spec import Isolation
from robotni.runner import confinement, forkserver

PR_SET_PDEATHSIG = 1
# Resolved before any fork: the child may only call async-signal-safe code.
_prctl = ctypes.CDLL(None, use_errno=True).prctl
# The params' memfd cannot be written, grown or shrunk once sealed, nor the seals removed.
PARAMS_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def params_file(params: Any) -> int:
    """The params as the job's stdin: a sealed in-memory file, so no file is created per job (creating a file
    costs more than everything else the runner does on some file systems) and the job cannot change it."""
    fd = os.memfd_create("params", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        data = memoryview(json.dumps(params).encode())
        while data:
            data = data[os.write(fd, data) :]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, PARAMS_SEALS)
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _child_setup(rlimits: list[tuple[int, int, int]]) -> Callable[[], None]:
    """Without util-linux (confinement.launcher): runs in the child after Popen switched the user, before exec."""

    def setup() -> None:
        confinement.apply(rlimits)
        # After the user switch (a credential change clears the death signal), so it holds for the script.
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    return setup


def start(
    argv: list[str],
    env: Mapping[str, str],
    cwd: Path,
    rlimits: list[tuple[int, int, int]],
    user: confinement.JobUser | None,
    stdin: int,
    isolation: Isolation = Isolation.PROCESS,
    preload: tuple[str, ...] = (),
) -> Child:
    """The job's process in its own session, its output on pipes. With FORK, argv[:3] (interpreter, -I, -u)
    start the type's fork server and its child runs argv[3:] (the script and its arguments)."""
    if isolation is Isolation.FORK:
        server = forkserver.server_for(argv[:3], preload)
        if server is not None:
            request = {
                "argv": argv[3:],
                "env": dict(env),
                "cwd": str(cwd),
                "rlimits": rlimits,
                "user": {"uid": user.uid, "gid": user.gid} if user is not None and user.switches else None,
            }
            with contextlib.suppress(forkserver.ForkServerError):  # it died: start this job as a process
                return server.start(request, stdin)
    launcher = confinement.launcher(rlimits, user)
    # With the launcher, subprocess can vfork (no preexec_fn, no user switch of its own).
    how = {"preexec_fn": _child_setup(rlimits), **confinement.popen_user(user)} if launcher is None else {}
    return Popened(
        subprocess.Popen(
            [*(launcher or []), *argv],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
            **how,
        )
    )


class Popened:
    """A job process that is our own child; forkserver.ServerJob is the same for a fork server's child."""

    exit_fd = None
    lost = None

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None and proc.stderr is not None  # start() opens both as pipes
        self.proc, self.pid = proc, proc.pid
        self.pipes = proc.stdout, proc.stderr
        self.stdout, self.stderr = proc.stdout.fileno(), proc.stderr.fileno()

    def exited(self) -> bool:
        """True once the script has exited. Not reaped (WNOWAIT): its pid keeps the group id ours to kill."""
        return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None

    def wait_exit(self, timeout: float) -> None:
        """Sleep until the script exits or timeout passes; used once it has closed its pipes."""
        deadline, pause = time.monotonic() + timeout, 0.0005
        while not self.exited() and time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 0.02)

    def finish(self) -> int:
        self.proc.wait()
        for pipe in self.pipes:
            pipe.close()
        return self.proc.returncode


Child = Popened | forkserver.ServerJob
