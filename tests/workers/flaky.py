# /// script
# [tool.robotni]
# description = "Test type: asks for a retry (exit 75) until its third attempt, then completes."
# soft_time_limit = 10
# retry = { max_retries = 2, backoff = 0.2, backoff_max = 1 }
# ///
import json
import os
import sys

attempt = int(os.environ["ROBOTNI_ATTEMPT"])
if attempt < 3:
    print(f"attempt {attempt}: not yet", file=sys.stderr)
    sys.exit(75)
with open(os.environ["ROBOTNI_RESULT"], "w") as f:
    json.dump({"attempt": attempt}, f)
