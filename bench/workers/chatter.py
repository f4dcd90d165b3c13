# /// script
# [tool.robotni]
# description = "Benchmark type: prints a line every `every` seconds for `seconds` seconds, reporting progress."
# soft_time_limit = 900
#
# [tool.robotni.params]
# properties.seconds = { type = "number", default = 60 }
# properties.every = { type = "number", default = 0.1 }
# ///
import json
import os
import sys
import time

params = json.load(sys.stdin)
lines = int(params["seconds"] / params["every"])
for number in range(lines):
    print(f"line {number}", flush=True)
    with open(os.environ["ROBOTNI_PROGRESS"] + ".tmp", "w") as f:
        json.dump({"fraction": (number + 1) / lines, "message": f"line {number}"}, f)
    os.replace(os.environ["ROBOTNI_PROGRESS"] + ".tmp", os.environ["ROBOTNI_PROGRESS"])
    time.sleep(params["every"])
