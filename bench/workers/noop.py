# /// script
# [tool.robotni]
# description = "Benchmark type: does nothing, so a job costs only what Robotni and the interpreter cost."
# soft_time_limit = 10
# ///
