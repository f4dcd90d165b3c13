# /// script
# [tool.robotni]
# description = "Test type: runs until the file named by `gate` exists, then completes."
# soft_time_limit = 60
# [tool.robotni.params]
# required = ["gate"]
# properties.gate = { type = "string" }
# ///
import json
import os
import sys
import time

gate = json.load(sys.stdin)["gate"]
while not os.path.exists(gate):
    time.sleep(0.05)
