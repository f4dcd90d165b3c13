# /// script
# [tool.robotni]
# description = "Test type: does nothing, at most 3 starts per second across every worker."
# soft_time_limit = 10
# rate = "3/s"
# ///
