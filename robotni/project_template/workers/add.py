# /// script
# requires-python = ">=3.11"
# [tool.robotni]
# description = "Adds two numbers: the result is {sum: x + y}."
# queue = "default"
# soft_time_limit = 10
#
# [tool.robotni.params]
# required = ["x", "y"]
# additionalProperties = false
# properties.x = { type = "number", description = "first addend" }
# properties.y = { type = "number", description = "second addend" }
# ///
import json
import os
import sys

params = json.load(sys.stdin)
with open(os.environ["ROBOTNI_RESULT"], "w") as f:
    json.dump({"sum": params["x"] + params["y"]}, f)
