"""POSTs of no-op jobs from concurrent clients: h2load (Debian's nghttp2-client) when installed, so that the rate
measures the API and not a Python client; Python requests otherwise."""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

SUBMITTERS = 8


def post_jobs(url: str, count: int, wtype: str, workdir: Path) -> tuple[float, str]:
    """count POSTs of a wtype job to url from SUBMITTERS concurrent clients: (submits/s, the client used)."""
    if shutil.which("h2load"):
        body = workdir / f"{wtype}.json"
        body.write_text(f'{{"type": "{wtype}"}}')
        argv = ["h2load", "--h1", f"-n{count}", f"-c{SUBMITTERS}", "-m1", f"-d{body}"]
        argv += ["-H", "Content-Type: application/json", url]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True)
        accepted = re.search(r"status codes: (\d+) 2xx", done.stdout)
        summary = "; ".join(
            line for line in done.stdout.splitlines() if line.startswith(("requests:", "status codes:"))
        )
        assert accepted and int(accepted.group(1)) == count, f"h2load: {summary}"
        return float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", done.stdout).group(1)), "h2load"
    local = threading.local()

    def one(_):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        assert local.session.post(url, json={"type": wtype}, timeout=30).status_code == 202

    started = time.perf_counter()
    with ThreadPoolExecutor(SUBMITTERS) as pool:
        list(pool.map(one, range(count)))
    return count / (time.perf_counter() - started), "Python requests"
