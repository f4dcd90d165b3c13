# /// script
# [tool.robotni]
# description = "Test type: records its pid and its pool process's, runs until the file named by `gate` exists, then asks for a retry."
# soft_time_limit = 60
# retry = { max_retries = 2, backoff = 8, backoff_max = 8 }
# [tool.robotni.params]
# required = ["gate"]
# properties.gate = { type = "string" }
# ///
import json
import os
import sys
import time

with open("pids.json", "w") as f:
    json.dump({"script": os.getpid(), "pool": os.getppid(), "attempt": os.environ["ROBOTNI_ATTEMPT"]}, f)
gate = json.load(sys.stdin)["gate"]
while not os.path.exists(gate):
    time.sleep(0.05)
print("gate open: asking for a retry", file=sys.stderr)
sys.exit(75)
