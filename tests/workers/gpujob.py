# /// script
# [tool.robotni]
# description = "Test type on the `gpu` queue, which only some worker hosts consume."
# queue = "gpu"
# soft_time_limit = 10
# ///
import json
import os
import socket

with open(os.environ["ROBOTNI_RESULT"], "w") as f:
    json.dump({"host": socket.gethostname()}, f)
