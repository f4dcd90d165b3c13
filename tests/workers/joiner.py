# /// script
# [tool.robotni]
# description = "Test type: sleeps, then returns its value and what $ROBOTNI_PARENTS held; fails when asked."
# soft_time_limit = 30
# [tool.robotni.params]
# properties.value = { default = 0 }
# properties.seconds = { type = "number", default = 0 }
# properties.fail = { type = "boolean", default = false }
# ///
import json
import os
import sys
import time

params = json.load(sys.stdin)
time.sleep(params["seconds"])
parents = None
if "ROBOTNI_PARENTS" in os.environ:
    with open(os.environ["ROBOTNI_PARENTS"]) as f:
        parents = json.load(f)
if params["fail"]:
    sys.exit("failing as asked")
with open(os.environ["ROBOTNI_RESULT"], "w") as f:
    json.dump({"value": params["value"], "parents": parents}, f)
