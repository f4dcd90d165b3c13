# /// script
# requires-python = ">=3.11"
# [tool.robotni]
# description = "The last 24 h (or `hours`): jobs by type and status, run times, repeated failures, queue waits."
# queue = "default"
# soft_time_limit = 300
# api = true  # it reads GET /api/worker/report: with ROBOTNI_API_TOKENS set, ROBOTNI_JOB_API_TOKEN says whose projects
#
# [tool.robotni.params]
# additionalProperties = false
# properties.hours = { type = "integer", minimum = 1, maximum = 168, default = 24, description = "hours before now" }
# ///
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any


def fetch(path: str) -> dict[str, Any]:
    request = urllib.request.Request(os.environ["ROBOTNI_API_URL"] + path)
    if os.environ.get("ROBOTNI_API_TOKEN"):
        request.add_header("Authorization", f"Bearer {os.environ['ROBOTNI_API_TOKEN']}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answer: dict[str, Any] = json.load(response)
            return answer
    except urllib.error.HTTPError as exc:
        hint = " (set ROBOTNI_JOB_API_TOKEN)" if exc.code == 401 else ""
        sys.exit(f"GET {path}: {exc.code} {exc.read().decode(errors='replace')}{hint}")


def table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    """A fixed-width table: text columns to the left, numbers to the right."""
    print(f"\n{title}")
    if not rows:
        print("  (none)")
        return
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]
    for row in [headers, ["-" * w for w in widths], *cells]:
        aligned = (c.rjust(w) if n else c.ljust(w) for c, w, n in zip(row, widths, numeric, strict=True))
        print(("  " + "  ".join(aligned)).rstrip())


hours = json.load(sys.stdin)["hours"]
report = fetch(f"/api/worker/report?hours={hours}")
print(f"Robotni: the {hours} h from {report['since']} to {report['until']}")
statuses = sorted({status for counts in report["by_type_status"].values() for status in counts})
table(
    "Jobs created, by type and status",
    ["type", *statuses, "total"],
    [[t, *(c.get(s, 0) for s in statuses), sum(c.values())] for t, c in report["by_type_status"].items()],
)
table(
    "Run time of the jobs that ended (seconds)",
    ["type", "jobs", "p50", "p95"],
    [[d["type"], d["count"], d["p50_seconds"], d["p95_seconds"]] for d in report["durations"]],
)
table(
    "Most repeated failures",
    ["jobs", "types", "last job", "error"],
    [[f["count"], ",".join(f["types"]), f["last_job_id"], f["error"]] for f in report["top_failures"]],
)
table(
    "Queue waits, creation to start (seconds)",
    ["type", "queue", "jobs", "p50", "p95"],
    [[w["type"], w["queue"], w["count"], w["p50_seconds"], w["p95_seconds"]] for w in report["queue_waits"]],
)
with open(os.environ["ROBOTNI_RESULT"], "w") as f:
    json.dump(report, f)
