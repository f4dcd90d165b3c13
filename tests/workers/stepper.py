# /// script
# [tool.robotni]
# description = "Test type: reports half way, waits 2.5 s, then reports done."
# soft_time_limit = 10
# ///
import json
import os
import time


def report(fraction, message):
    with open(os.environ["ROBOTNI_PROGRESS"] + ".tmp", "w") as f:
        json.dump({"fraction": fraction, "message": message}, f)
    os.replace(os.environ["ROBOTNI_PROGRESS"] + ".tmp", os.environ["ROBOTNI_PROGRESS"])


report(0.5, "half way")
print("half", flush=True)
time.sleep(2.5)
report(1.0, "done")
