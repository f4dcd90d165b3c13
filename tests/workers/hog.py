# /// script
# [tool.robotni]
# description = "Test type: exceeds one of its limits on purpose (memory, cpu, fsize, fork, files)."
# soft_time_limit = 20
# [tool.robotni.limits]
# memory_mb = 256
# cpu_seconds = 1
# file_size_mb = 1
# open_files = 64
# processes = 32
# [tool.robotni.params]
# required = ["mode"]
# properties.mode = { enum = ["memory", "cpu", "fsize", "fork", "files"] }
# ///
import json
import os
import sys
import time

mode = json.load(sys.stdin)["mode"]
if mode == "memory":
    hoard = [bytearray(64 * 1024 * 1024) for _ in range(64)]  # 4 GiB, far over 256 MiB
elif mode == "cpu":
    while True:
        pass
elif mode == "fsize":
    with open("big", "wb") as f:
        f.write(b"x" * (4 * 1024 * 1024))
elif mode == "files":
    handles = [open(os.devnull) for _ in range(1000)]  # noqa: SIM115  to hit the open files limit
elif mode == "fork":
    children = 0
    with open("children.txt", "w") as pids:
        try:
            while True:
                pid = os.fork()
                if pid == 0:
                    time.sleep(120)  # parked: only the group kill ends it
                    os._exit(0)
                children += 1
                pids.write(f"{pid}\n")
                pids.flush()
        except OSError as exc:
            print(f"fork refused after {children} children: {exc}", flush=True)
            raise SystemExit(3) from None
print("not stopped by a limit", flush=True)
