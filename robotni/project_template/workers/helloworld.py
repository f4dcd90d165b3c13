# /// script
# requires-python = ">=3.11"
# [tool.robotni]
# description = "Prints a greeting."
# queue = "default"
# soft_time_limit = 10
# ///
print("Hello, World!")
