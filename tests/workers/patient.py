# /// script
# [tool.robotni]
# description = "Test type: sleeps, records its pid, and may be retried once (for worker-loss tests)."
# soft_time_limit = 30
# retry = { max_retries = 1, backoff = 0.2, backoff_max = 1 }
# [tool.robotni.params]
# properties.seconds = { type = "number", default = 3 }
# ///
import json
import os
import sys
import time

with open("pids.json", "w") as f:
    json.dump({"script": os.getpid(), "attempt": os.environ["ROBOTNI_ATTEMPT"]}, f)
print("attempt", os.environ["ROBOTNI_ATTEMPT"], flush=True)
time.sleep(json.load(sys.stdin)["seconds"])
