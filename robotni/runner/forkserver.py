"""Fork servers: per worker type with `isolation = "fork"`, helpers of the worker's process that start its jobs.

The helper (robotni/runner/forkserver_program.py) runs with the type's interpreter and flags and imports the type's
`preload` modules once; per job it forks a child that sets the job up (session, files, cwd, user, limits,
parent-death signal, clean environment) and runs the script: no interpreter start-up per job.

A server runs one job at a time: a process keeps one per type and thread that runs jobs at once (a prefork pool
process one, a threads pool one per thread), each handed to one caller at a time.

Failure handling (chosen so a helper can only ever cost a job, never a worker): a server that cannot start or
dies between jobs is replaced, and while it cannot be started its jobs run as ordinary processes (the runner's
own spawn); one that dies while a job runs takes that job with it (parent-death signal) and the job fails
saying so; the next job starts a new server. A server is started from a thread that lives as long as the
worker (the main thread, or a pool's thread): the parent-death signal follows the thread that forked it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from robotni.errors import RobotniError
from robotni.runner import forkserver_program as program

log = logging.getLogger(__name__)
PROGRAM = Path(program.__file__).resolve()
# A server reports a job's exit at once; after its group was killed, silence this long means it died.
REPORT_WAIT_SECONDS = 5.0
# A type's preload may import a large stack (torch: seconds); anything longer is a server that hangs.
START_TIMEOUT = 120.0
# The server answers a job request once the child finished its set-up.
REQUEST_TIMEOUT = 30.0
# After a server failed to start, its jobs run as ordinary processes this long before it is tried again.
RETRY_AFTER_SECONDS = 60.0
# What a server's own environment holds: no secret of the worker's can reach a job through the server.
SERVER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def _readable(sock: socket.socket, timeout: float) -> bool:
    poller = select.poll()  # not select(): a worker may hold descriptors above FD_SETSIZE
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


class ForkServerError(RobotniError):
    """A fork server could not be started or stopped answering: the caller spawns the job itself."""


class Server:
    """One helper process and our end of its socket."""

    def __init__(self, prefix: Sequence[str], preload: Sequence[str] = ()) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [*prefix, str(PROGRAM), str(theirs.fileno()), str(os.getpid()), json.dumps(list(preload))]
        self.interpreter = argv[0]
        try:
            # Own session: a Ctrl-C or a signal to the worker's process group must not end it before its jobs.
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
                env=SERVER_ENV,
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            raise ForkServerError(f"cannot start {argv[0]}: {exc}") from None
        finally:
            theirs.close()
        self.sock, self.busy, self.owner = ours, False, os.getpid()
        hello = self._ask(None, START_TIMEOUT)
        if "error" in hello:
            self.stop()
            raise ForkServerError(hello["error"])

    @property
    def alive(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def _ask(self, request: dict[str, Any] | None, timeout: float, fds: list[int] | None = None) -> dict[str, Any]:
        """Send request (if any) and read one answer; ForkServerError, and the server is stopped, if that fails."""
        try:
            if request is not None:
                program.send(self.sock, request, fds)
            if not _readable(self.sock, timeout):
                raise TimeoutError(f"no answer within {timeout:g} s")
            return program.receive(self.sock)[0]
        except (OSError, EOFError, ValueError) as exc:
            self.stop()
            raise ForkServerError(f"fork server {self.interpreter} failed: {exc}") from None

    def start(self, job: dict[str, Any], stdin: int) -> ServerJob:
        """Start a job (argv: the script and its arguments; env, cwd, rlimits, user) with stdin and new pipes
        for its output: its handle; OSError when its child could not be set up (as subprocess raises it)."""
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            answer = self._ask(job, REQUEST_TIMEOUT, [stdin, out_w, err_w])
            if "pid" not in answer:
                raise OSError(answer.get("errno") or 0, answer.get("error", "cannot start"), answer.get("filename"))
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            self.busy = not self.alive  # no child: the server takes the next job, unless it failed
            raise
        finally:
            os.close(out_w)  # the server had its own copies until it forked
            os.close(err_w)
        return ServerJob(self, answer["pid"], out_r, err_r)

    def stop(self) -> None:
        self.busy = True  # never handed out again
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.owner == os.getpid():
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait()


class ServerJob:
    """A job process that is the server's child: its output comes on our pipes, its exit over the server's
    socket, like waitid(WNOWAIT): the runner supervises it as it does its own children."""

    def __init__(self, server: Server, pid: int, stdout: int, stderr: int) -> None:
        self.server, self.pid, self.stdout, self.stderr = server, pid, stdout, stderr
        self.returncode: int | None = None
        self.lost: str | None = None  # why the job's status is unknown (its server died)
        self.released = False

    @property
    def exit_fd(self) -> int | None:
        """Readable when the exit report (or the server's end) arrived; None once it has."""
        return self.server.sock.fileno() if self.returncode is None and self.lost is None else None

    def exited(self, timeout: float = 0.0) -> bool:
        """True once the job has exited (it stays unreaped, so its group id stays ours until release)."""
        if self.returncode is not None or self.lost is not None:
            return True
        try:
            if not _readable(self.server.sock, timeout):
                return False
            self.returncode = program.receive(self.server.sock)[0]["exited"]
        except (OSError, EOFError, ValueError, KeyError) as exc:
            # The job was killed with its server (parent-death signal); a later job gets a new server.
            self.lost = f"its fork server died ({exc.__class__.__name__})"
            self.server.stop()
        return True

    def wait_exit(self, timeout: float) -> None:
        self.exited(timeout)

    def finish(self) -> int:
        """After the runner killed what was left of the job's group: let the server reap the job and take the
        next one. The returncode."""
        if not self.exited(REPORT_WAIT_SECONDS):  # the group was just killed: the report is on its way
            self.lost = "no exit report from its fork server"
            self.server.stop()
        if not self.released:
            self.released = True
            os.close(self.stdout)
            os.close(self.stderr)
            try:
                program.send(self.server.sock, {"release": self.pid})
                self.server.busy = False
            except OSError:
                self.server.stop()
        return self.returncode if self.returncode is not None else -9


Key = tuple[tuple[str, ...], tuple[str, ...]]
# Servers of this process by (interpreter and flags, preload); a forked pool process starts its own.
_servers: dict[Key, list[Server]] = {}
_failed: dict[Key, float] = {}
_handing_out = threading.Lock()


def server_for(prefix: Sequence[str], preload: Sequence[str] = ()) -> Server | None:
    """An idle server of this process for that key, started if none is, and handed to the caller alone until its
    job is released; None when none can be had just now."""
    key = (tuple(prefix), tuple(preload))
    with _handing_out:
        servers = _servers.setdefault(key, [])
        for server in list(servers):
            if not server.alive:  # died, or inherited from the process this one was forked from
                server.stop()
                servers.remove(server)
            elif not server.busy:
                server.busy = True
                return server
        if time.monotonic() < _failed.get(key, float("-inf")):
            return None
    return _started(key)


def _started(key: Key) -> Server | None:
    """A new server for the caller (outside the lock: a preload may take seconds), or None for a while if it fails."""
    try:
        server = Server(*key)
    except ForkServerError as exc:
        _failed[key] = time.monotonic() + RETRY_AFTER_SECONDS
        log.warning("%s; its jobs start as separate processes for %g s", exc, RETRY_AFTER_SECONDS)
        return None
    server.busy = True
    with _handing_out:
        _failed.pop(key, None)
        _servers.setdefault(key, []).append(server)
    return server


def warm(prefix: Sequence[str], preload: Sequence[str] = (), count: int = 1) -> None:
    """Have `count` idle servers for that key, so that as many jobs at once need not wait for one to start."""
    ready = [server for _ in range(count) if (server := server_for(prefix, preload)) is not None]
    for server in ready:
        server.busy = False


def stop_all() -> None:
    """Stop this process's servers (tests; a worker's servers die with it anyway)."""
    for servers in _servers.values():
        for server in servers:
            server.stop()
    _servers.clear()
    _failed.clear()
