# /// script
# [tool.robotni]
# description = "Test type: naps; at most 2 jobs of one account run at once, across every worker."
# soft_time_limit = 30
# concurrency = { limit = 2, key = "params.account" }
# [tool.robotni.params]
# required = ["account"]
# properties.account = { type = "string" }
# properties.seconds = { type = "number", default = 0.05 }
# ///
import json
import sys
import time

time.sleep(json.load(sys.stdin)["seconds"])
