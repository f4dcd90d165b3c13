# /// script
# [tool.robotni]
# description = "Test type: starts a grandchild, records both pids, then sleeps (limits and cancel kill both)."
# soft_time_limit = 30
# [tool.robotni.params]
# properties.seconds = { type = "number", default = 30 }
# properties.ignore_term = { type = "boolean", default = false }
# ///
import json
import os
import signal
import subprocess
import sys
import time

params = json.load(sys.stdin)
if params["ignore_term"]:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open("pids.json", "w") as f:
    json.dump({"script": os.getpid(), "grandchild": child.pid}, f)
print("sleeping", flush=True)
time.sleep(params["seconds"])
