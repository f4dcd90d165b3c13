# /// script
# [tool.robotni]
# description = "Test type: writes to stderr and exits with the code it is given."
# soft_time_limit = 10
# [tool.robotni.params]
# properties.code = { type = "integer", default = 3 }
# ///
import json
import sys

code = json.load(sys.stdin)["code"]
print("about to fail", file=sys.stderr)
sys.exit(code)
