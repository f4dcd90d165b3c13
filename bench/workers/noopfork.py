# /// script
# [tool.robotni]
# description = "Benchmark type: does nothing as a child of its fork server (isolation = fork)."
# soft_time_limit = 10
# isolation = "fork"
# ///
