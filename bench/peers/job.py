"""What every peer's task does: run the no-op script as a new interpreter, and log its times.

The log line is `submitted started ended` (seconds since the epoch): a drain's rate runs from the first start to
the last end, as Robotni's does from its jobs' stored timestamps; a latency from the submit to the end.
"""

from __future__ import annotations

import subprocess
import time


def run_noop(python: str, script: str, log: str, submitted: float) -> None:
    started = time.time()
    subprocess.run([python, "-I", script], check=True)
    ended = time.time()
    with open(log, "a") as out:  # one short append per job: whole lines even from concurrent processes
        out.write(f"{submitted} {started} {ended}\n")
