# /// script
# [tool.robotni]
# description = "Test type: prints `lines` numbered lines, one every `every` seconds, reporting progress."
# soft_time_limit = 60
#
# [tool.robotni.params]
# properties.lines = { type = "integer", default = 10 }
# properties.every = { type = "number", default = 0.1 }
# ///
import json
import os
import sys
import time

params = json.load(sys.stdin)
for number in range(params["lines"]):
    print(f"line {number}", flush=True)
    with open(os.environ["ROBOTNI_PROGRESS"] + ".tmp", "w") as f:
        json.dump({"fraction": (number + 1) / params["lines"], "message": f"line {number}"}, f)
    os.replace(os.environ["ROBOTNI_PROGRESS"] + ".tmp", os.environ["ROBOTNI_PROGRESS"])
    time.sleep(params["every"])
