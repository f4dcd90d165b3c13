# /// script
# [tool.robotni]
# description = "Test type: kills the worker process that runs it, every time."
# soft_time_limit = 10
# retry = { max_retries = 2, backoff = 0.2, backoff_max = 1 }
# ///
import os
import signal

os.kill(os.getppid(), signal.SIGKILL)
