"""CPU seconds of a worker's parts and of the machine, from /proc: where a job's time goes."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _times(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process, from /proc; nothing for one that just ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # a pool process's child that was a job, not a fork server: its pool counts it
        return 0.0, 0.0
    return (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def worker_cpu(main: int) -> dict[str, float]:
    """CPU seconds so far of a worker's parts: its main process, its pool processes, and the job processes
    (the pool processes' reaped children, and the fork servers with theirs)."""
    pools = _children(main)
    servers = [server for pool in pools for server in _children(pool)]
    return {
        "worker main process": _times(main)[0],
        "pool processes": sum(_times(pool)[0] for pool in pools),
        "job processes": sum(_times(pool)[1] for pool in pools) + sum(sum(_times(s)) for s in servers),
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
