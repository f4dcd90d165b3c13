# /// script
# [tool.robotni]
# description = "Test type: adds two numbers as a child of its fork server, with json and decimal imported ahead."
# soft_time_limit = 10
# isolation = "fork"
# preload = ["json", "decimal"]
# [tool.robotni.params]
# required = ["x", "y"]
# properties.x = { type = "number" }
# properties.y = { type = "number" }
# ///
import os
import sys

preloaded = "decimal" in sys.modules
import json  # noqa: E402  (after the check: json is preloaded too)

params = json.load(sys.stdin)
print("adding")
with open(os.environ["ROBOTNI_RESULT"], "w") as f:
    json.dump({"sum": params["x"] + params["y"], "preloaded": preloaded}, f)
