"""The fork server's own program: run as a script by a worker type's interpreter, so the standard library only.

`python -I -u forkserver_program.py SOCKET_FD PARENT_PID PRELOAD_JSON`. It imports the type's `preload` modules
(never the script), then serves its worker process over the socket it inherited (robotni/runner/forkserver.py is
the other end), one job at a time: per job it forks, and the child sets the job up and runs the script as
`python script.py` would, without an interpreter start-up.

Setting a job up, in the child: own session; stdin, stdout and stderr from the three descriptors the request
carried (SCM_RIGHTS); the working directory; the job user (no supplementary groups); the resource limits; the
parent-death signal (the server dies with the worker thread that started it, the job with the server); the
job's clean environment. A failure is written to a pipe the server reads, so the runner hears why.

The server reports the job's pid, then its exit status without reaping it (waitid WNOWAIT: the pid, and with
it the process group id, cannot be reused while the runner may still signal the group), and reaps it when the
runner releases it.
"""

from __future__ import annotations  # annotations are not evaluated: any Python 3.9+ (socket.send_fds) runs this

import contextlib
import ctypes
import gc
import json
import os
import resource
import signal
import socket
import struct
import sys
from types import TracebackType
from typing import Any, NoReturn

HEADER = struct.Struct("!I")
MAX_FDS = 3  # stdin, stdout, stderr
MAX_MESSAGE = 16 * 1024 * 1024
PR_SET_NAME, PR_SET_PDEATHSIG = 15, 1
EXEC_FAILED = 127
_libc = ctypes.CDLL(None, use_errno=True)


# --- messages: a length, JSON, and descriptors with the first bytes ----------------------------------------


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    header = HEADER.pack(len(data))
    if fds:
        socket.send_fds(sock, [header], fds)
    else:
        sock.sendall(header)
    sock.sendall(data)


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise EOFError("the other end closed the socket")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The next message and the descriptors that came with it; EOFError when the other end has gone."""
    header, fds, _flags, _address = socket.recv_fds(sock, HEADER.size, MAX_FDS)
    if not header:
        raise EOFError("the other end closed the socket")
    (size,) = HEADER.unpack(header + _exactly(sock, HEADER.size - len(header)))
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes")
    return json.loads(_exactly(sock, size)), fds


# --- the job's child ---------------------------------------------------------------------------------------


def _die_with(parent: int) -> None:
    """SIGKILL when the parent dies; if it already died (we were reparented), die now."""
    if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(EXEC_FAILED)


def _set_up(job: dict[str, Any], fds: list[int], server: int) -> None:
    """Everything the runner's subprocess set-up did, in the same order: session, files, cwd, user, limits."""
    os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)  # the copy at 0, 1 or 2 is inheritable, the original is closed below
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(job["cwd"])
    user = job.get("user")
    if user is not None:
        os.setgroups([])
        os.setgid(user["gid"])
        os.setuid(user["uid"])
    for which, soft, hard in job["rlimits"]:
        resource.setrlimit(which, (soft, hard))
    _die_with(server)  # after the user switch: a credential change clears the death signal


def _fail(errors: int, exc: BaseException) -> NoReturn:
    errno = exc.errno if isinstance(exc, OSError) else None
    message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    filename = exc.filename if isinstance(exc, OSError) else None
    try:
        os.write(errors, json.dumps({"errno": errno, "error": message, "filename": filename}).encode())
    finally:
        os._exit(EXEC_FAILED)


def _become_job(job: dict[str, Any], errors: int) -> dict[str, Any]:
    """The child turns into the job's interpreter state, then returns to run the script."""
    os.environ.clear()
    os.environ.update(job["env"])
    sys.argv = list(job["argv"])
    script = job["argv"][0]
    _libc.prctl(PR_SET_NAME, os.path.basename(script).encode()[:15])  # `ps` and `top` show the script's name

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        """Tracebacks start at the script, as they would with `python script.py`."""
        first = tb
        while first is not None and first.tb_frame.f_code.co_filename != script:
            first = first.tb_next
        if first is not None and isinstance(value, BaseException):
            value = value.with_traceback(first)  # the interpreter prints the exception's own traceback
        sys.__excepthook__(kind, value, first or tb)

    sys.excepthook = hook
    os.close(errors)  # set up: the server reads EOF and tells the runner the job started
    return job


# --- the server ---------------------------------------------------------------------------------------------


def _exit_status(pid: int) -> int:
    """Wait for the job to exit without reaping it: a returncode as subprocess gives it (negative: signal)."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    assert info is not None  # only WNOHANG returns None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _start(sock: socket.socket, job: dict[str, Any], fds: list[int]) -> int | dict[str, Any]:
    """Fork the job's child: its pid in the server; in the child, the job (to run the script)."""
    server = os.getpid()
    errors_in, errors_out = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.fork()
    except OSError:
        for fd in (errors_in, errors_out, *fds):
            os.close(fd)
        raise
    if pid == 0:
        try:
            sock.close()
            os.close(errors_in)
            _set_up(job, fds, server)
            return _become_job(job, errors_out)
        except BaseException as exc:
            _fail(errors_out, exc)
    os.close(errors_out)
    for fd in fds:
        os.close(fd)
    failure = _read_all(errors_in)  # EOF once the child finished its set-up
    os.close(errors_in)
    if failure:
        os.waitpid(pid, 0)
        raise _Refused(json.loads(failure))
    return pid


class _Refused(Exception):
    """The job's child could not be set up; its reason goes back to the runner."""


def serve(sock: socket.socket) -> dict[str, Any] | None:
    """Start one job after the other until the socket closes; returns only in a job's child."""
    while True:
        try:
            request, fds = receive(sock)
        except EOFError:
            return None
        try:
            started = _start(sock, request, fds)
        except _Refused as refused:
            send(sock, refused.args[0])
            continue
        except OSError as exc:  # fork itself failed (no memory, a process limit): the job fails, the server stays
            send(sock, {"errno": exc.errno, "error": exc.strerror or str(exc), "filename": None})
            continue
        if isinstance(started, dict):
            return started
        send(sock, {"pid": started})
        send(sock, {"exited": _exit_status(started)})
        try:
            receive(sock)  # the runner's release: it has killed what was left of the job's group
        except EOFError:
            return None
        finally:
            os.waitpid(started, 0)


def main(argv: list[str]) -> dict[str, Any] | None:
    fd, parent, preload = int(argv[1]), int(argv[2]), json.loads(argv[3])
    _die_with(parent)
    # Run as a script, this program's folder heads sys.path: neither a preload nor a job may import Robotni's files.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    # The socket and the descriptors a request brings are the server's only ones besides 0, 1 and 2 (it was
    # started with close_fds); a job's child closes them all before it runs anything of the job's.
    os.set_inheritable(fd, False)
    sock = socket.socket(fileno=fd)
    try:
        for name in preload:
            __import__(name)
    except BaseException as exc:  # any failure of a type's import is the type's: reported, not raised
        send(sock, {"error": f"preload {name!r} failed: {exc.__class__.__name__}: {exc}"})
        return None
    # What is loaded now is shared by every job's child: the collector must not touch it (copy-on-write).
    gc.freeze()
    send(sock, {"ready": True, "pid": os.getpid()})
    return serve(sock)


def _exit_code(value: object) -> int:
    """What the interpreter makes of SystemExit's argument."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1


def run_script(script: str) -> int:
    """Run the script as `python script.py` would, then end as the interpreter does, without its teardown.

    Tearing down a forked interpreter touches every object it inherited (copy-on-write faults: about 10 ms);
    what a script can see of the teardown is kept: non-daemon threads are joined, atexit functions run, the
    script's globals are released (so files it left open are flushed and closed), the streams are flushed.
    """
    import atexit
    import builtins
    import types

    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=script, __cached__=None, __builtins__=builtins)
    sys.modules["__main__"] = main
    code, interrupted = 0, False
    try:
        with open(script, "rb") as source:  # as the job user: the same permission check as an exec
            exec(compile(source.read(), script, "exec", dont_inherit=True), main.__dict__)
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
        code, interrupted = 1, isinstance(exc, KeyboardInterrupt)
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()
    atexit._run_exitfuncs()
    main.__dict__.clear()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if interrupted:  # as the interpreter does: die of the signal, so the parent sees it
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return code


if __name__ == "__main__":
    _job = main(sys.argv)
    if _job is not None:  # a job's child
        os._exit(run_script(_job["argv"][0]))
