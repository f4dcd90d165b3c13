"""Idle CPU of one worker (main process and pool) at several polling intervals: `python -m bench.idle`."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from tests.stack import Stack

SECONDS = 10


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children, from /proc."""
    total = 0.0
    for child in [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]:
        fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    print("| polling interval | idle worker CPU |\n|---|---|")
    for interval in ("1.0", "0.1", "0.05", "0.02", "0.01"):
        stack = Stack(Path(tempfile.mkdtemp(prefix="robotni-idle-")), {"ROBOTNI_POLL_INTERVAL": interval})
        try:
            worker = stack.start_worker("idle")
            time.sleep(2)  # let start-up work settle before measuring
            before = cpu_seconds(worker.pid)
            time.sleep(SECONDS)
            used = cpu_seconds(worker.pid) - before
        finally:
            stack.stop()
        print(f"| {interval} s | {used / SECONDS:.1%} of a core |")


if __name__ == "__main__":
    main()
