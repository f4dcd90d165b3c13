# /// script
# requires-python = ">=3.11"
# [tool.robotni]
# description = "Waits a random time between 1 s and delay_seconds (below 1: exactly that long), reporting progress."
# queue = "default"
# soft_time_limit = 120
#
# [tool.robotni.params]
# additionalProperties = false
# properties.delay_seconds = { type = "number", minimum = 0, maximum = 100, default = 5 }
# ///
import json
import os
import random
import sys
import time


def report(fraction: float, message: str) -> None:
    """Progress for Robotni: the latest JSON written to $ROBOTNI_PROGRESS wins."""
    tmp = os.environ["ROBOTNI_PROGRESS"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"fraction": fraction, "message": message}, f)
    os.replace(tmp, os.environ["ROBOTNI_PROGRESS"])


delay = json.load(sys.stdin)["delay_seconds"]
waited = delay if delay < 1 else round(random.uniform(1, delay), 3)
steps = max(1, int(waited))
for step in range(steps):
    time.sleep(waited / steps)
    report((step + 1) / steps, f"waited {waited * (step + 1) / steps:.1f} of {waited} s")
print("Fake job completed")
with open(os.environ["ROBOTNI_RESULT"], "w") as f:
    json.dump({"waited": waited}, f)
