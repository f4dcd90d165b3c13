# /// script
# [tool.robotni]
# description = "Test type: like sleeper, with a 1 s soft limit and a 2 s hard limit, and it ignores SIGTERM."
# soft_time_limit = 1
# hard_time_limit = 2
# ///
import json
import os
import signal
import subprocess
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open("pids.json", "w") as f:
    json.dump({"script": os.getpid(), "grandchild": child.pid}, f)
time.sleep(60)
