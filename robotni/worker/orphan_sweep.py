"""Kills what the jobs of a dead worker left running on this machine.

A job leads its own session. When its pool process dies (a worker SIGKILLed, the OOM killer), the kernel
kills the job (parent-death signal) but not what the job started: those processes keep the job's session id
and its ROBOTNI_JOB_ID. The runner kills a job's group whenever the job ends, so a process of a job session
whose leader is gone outlived its runner: nobody else will ever stop it. A descendant that left the session
(setsid) or dropped its environment has left Robotni's reach and is not looked for.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

log = logging.getLogger(__name__)
PROC = Path("/proc")
JOB_MARK = b"ROBOTNI_JOB_ID="


def _session_of(pid: str) -> int | None:
    try:
        stat = (PROC / pid / "stat").read_bytes()
    except OSError:  # ended meanwhile
        return None
    return int(stat.rsplit(b")", 1)[1].split()[3])  # fields after the command name, which may hold spaces


def _job_of(pid: str) -> str | None:
    try:
        environ = (PROC / pid / "environ").read_bytes()
    except OSError:  # ended meanwhile, or another user's process that this worker may not read
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(JOB_MARK):
            return entry[len(JOB_MARK) :].decode(errors="replace")
    return None


def orphans() -> dict[int, str]:
    """pid -> job id of every process left over from a job whose runner is gone."""
    found = {}
    for pid in filter(str.isdigit, os.listdir(PROC)):
        session = _session_of(pid)
        if not session or session == int(pid) or (PROC / str(session)).exists():
            continue  # no session of a job, a live job itself, or a job that still runs
        job_id = _job_of(pid)
        if job_id is not None:
            found[int(pid)] = job_id
    return found


def kill_orphans() -> int:
    killed = 0
    for pid, job_id in orphans().items():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        killed += 1
        log.warning("job %s: killed process %d, left running by a worker that died", job_id, pid)
    return killed
