# /// script
# [tool.robotni]
# description = "Test type on a queue no test worker consumes: its jobs stay queued."
# queue = "parked"
# ///
