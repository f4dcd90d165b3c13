# /// script
# requires-python = ">=3.11"
# [tool.robotni]
# description = "A dated export of the job store (for robotni import) in $ROBOTNI_DATA_DIR/backups; keeps the newest."
# queue = "default"
# soft_time_limit = 3600
# limits = { file_size_mb = 102400 }  # an export with logs can outgrow the 1 GiB a job may write by default
# api = true               # it reads GET /api/worker/export: ROBOTNI_JOB_API_TOKEN must be a token for all projects
# data_folder = "backups"  # $ROBOTNI_DATA_DIR/backups, made by the worker for the job user
#
# [tool.robotni.params]
# additionalProperties = false
# properties.keep = { type = "integer", minimum = 1, maximum = 1000, default = 7, description = "exports kept" }
# properties.logs = { type = "boolean", default = true, description = "with each job's stored output" }
# ///
import json
import os
import shutil
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

PREFIX = "robotni-export-"
# A large store with its logs takes a while to stream; the type's time limit bounds the whole run.
READ_TIMEOUT = 300


def download(url: str, path: Path) -> None:
    request = urllib.request.Request(url)
    if os.environ.get("ROBOTNI_API_TOKEN"):
        request.add_header("Authorization", f"Bearer {os.environ['ROBOTNI_API_TOKEN']}")
    try:
        with urllib.request.urlopen(request, timeout=READ_TIMEOUT) as response, open(path, "wb") as f:
            shutil.copyfileobj(response, f, 1024 * 1024)
    except urllib.error.HTTPError as exc:
        path.unlink(missing_ok=True)
        hint = " (set ROBOTNI_JOB_API_TOKEN to a token for all projects)" if exc.code in (401, 403) else ""
        sys.exit(f"GET {url}: {exc.code} {exc.read().decode(errors='replace')}{hint}")


def end_line(path: Path) -> dict[str, int]:
    """The export's last line: its counts, which say the download is whole."""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 4096))
        last = json.loads(f.read().splitlines()[-1])
    if last.get("kind") != "end":
        sys.exit(f"{path.name}: the export was cut short (no end line)")
    counts: dict[str, int] = last["counts"]
    return counts


params = json.load(sys.stdin)
folder = Path(os.environ["ROBOTNI_DATA_FOLDER"])
name = f"{PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}.jsonl"  # two runs in a second: two files
partial = folder / f".{name}.partial"
download(f"{os.environ['ROBOTNI_API_URL']}/api/worker/export?logs={str(params['logs']).lower()}", partial)
counts = end_line(partial)
partial.replace(folder / name)
older = sorted(folder.glob(f"{PREFIX}*.jsonl"), reverse=True)[params["keep"] :]  # dated names sort by time
for path in older:
    path.unlink()
size = (folder / name).stat().st_size
print(f"wrote {folder / name}: {size} bytes, " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
print(f"removed {len(older)} older export(s): {', '.join(p.name for p in older) or 'none'}")
with open(os.environ["ROBOTNI_RESULT"], "w") as f:
    json.dump({"file": str(folder / name), "bytes": size, "counts": counts, "removed": [p.name for p in older]}, f)
