# /// script
# [tool.robotni]
# description = "Test type: does nothing, at most 30 starts in any minute across every worker."
# soft_time_limit = 10
# rate = "30/m"
# ///
