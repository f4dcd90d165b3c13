# /// script
# [tool.robotni]
# description = "Test type: reports its environment and what it can open, or plants a symlink as its result."
# soft_time_limit = 20
# [tool.robotni.params]
# properties.write = { type = "array", items = { type = "string" }, default = [] }
# properties.read = { type = "array", items = { type = "string" }, default = [] }
# properties.list = { type = "array", items = { type = "string" }, default = [] }
# properties.symlink_result_to = { type = "string" }
# ///
import json
import os
import sys


def attempt(action, path):
    try:
        if action == "write":
            with open(path, "ab") as f:
                f.write(b"")
        elif action == "read":
            with open(path, "rb") as f:
                f.read(16)
        else:
            os.listdir(path)
        return "ok"
    except OSError as exc:
        return type(exc).__name__


params = json.load(sys.stdin)
if "symlink_result_to" in params:
    os.symlink(params["symlink_result_to"], os.environ["ROBOTNI_RESULT"])
    raise SystemExit(0)
report = {
    "uid": os.getuid(),
    "env": sorted(os.environ),
    "path": sys.path,
    "isolated": sys.flags.isolated,
    "cwd": os.getcwd(),
    **{action: {p: attempt(action, p) for p in params[action]} for action in ("write", "read", "list")},
}
with open(os.environ["ROBOTNI_RESULT"], "w") as f:
    json.dump(report, f)
