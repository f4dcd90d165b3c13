"""CPU seconds of a worker's parts and of the machine, from /proc: where a job's time goes."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _times(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process, from /proc; nothing for one that just ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # a job that ended meanwhile: its parent counts it once it is reaped
        return 0.0, 0.0
    return (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def _children(pid: int) -> list[int]:
    """The live children of every thread of the process (a threads pool's jobs are its threads' children)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the thread or the process ended meanwhile
            continue
    return found


def _command(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def worker_cpu(main: int) -> dict[str, float]:
    """CPU seconds so far of a worker's parts: its process (with the threads pool, the pool's work too), its
    prefork pool processes if any, and the job processes (the reaped children of either, and the fork servers and
    running jobs with theirs)."""
    pools = [pid for pid in _children(main) if _command(pid) == _command(main)]  # prefork: copies of the main
    others = [pid for parent in (main, *pools) for pid in _children(parent) if pid not in pools]
    return {
        "worker process": _times(main)[0],
        "pool processes": sum(_times(pool)[0] for pool in pools),
        "job processes": sum(_times(parent)[1] for parent in (main, *pools)) + sum(sum(_times(p)) for p in others),
        "PostgreSQL and Redis (all their clients)": _servers_cpu(),
        "machine": _busy_seconds(),
    }


def _servers_cpu() -> float:
    """CPU seconds of this machine's PostgreSQL and Redis processes, the ones that ended included."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        if text[text.index("(") + 1 : text.rindex(")")] in ("postgres", "redis-server"):
            total += sum(_times(int(stat.parent.name)))
    return total


def _busy_seconds() -> float:
    """CPU seconds all cores have been busy since boot (/proc/stat; idle and iowait excluded)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICK
