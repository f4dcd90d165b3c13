"""`python -m robotni.flower`: Flower, but never open beyond loopback without a password.

Flower shows every job's arguments and can revoke them. It binds ROBOTNI_FLOWER_BIND (127.0.0.1:5555); any other
address needs ROBOTNI_FLOWER_BASIC_AUTH (`user:password`, several separated by commas), handed to Flower in
its environment (FLOWER_BASIC_AUTH), not on its command line where every local user could read it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys

from robotni.config import settings

log = logging.getLogger(__name__)

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
# Flower keeps every task it has seen in memory, 100,000 by default: 10,000 jobs grew it by about 60 MiB
# (docs/benchmarks.md). The job table holds every job; Flower needs only the recent ones (FLOWER_MAX_TASKS overrides).
MAX_TASKS = 1000


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # "", 0.0.0.0's spelling as a name, or a host name that may resolve anywhere


def command(bind: str, basic_auth: str) -> tuple[list[str], dict[str, str]]:
    """Flower's argv and environment, or SystemExit saying why it must not start."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit(f"ROBOTNI_FLOWER_BIND must be host:port, not {bind!r}")
    env = dict(os.environ)
    env.setdefault("FLOWER_MAX_TASKS", str(MAX_TASKS))
    basic_auth = basic_auth or env.get("FLOWER_BASIC_AUTH", "")
    if basic_auth:
        if not all(":" in pair and pair.split(":", 1)[1] for pair in basic_auth.split(",")):
            raise SystemExit("ROBOTNI_FLOWER_BASIC_AUTH must be user:password[,user:password...]")
        env["FLOWER_BASIC_AUTH"] = basic_auth
    elif is_loopback(host):
        # Only this machine reaches it, as with the API without tokens: its buttons (revoke, pool) work too.
        env.setdefault("FLOWER_UNAUTHENTICATED_API", "true")
    else:
        raise SystemExit(
            f"refusing to serve Flower on {host or 'every address'} without a password: "
            "set ROBOTNI_FLOWER_BASIC_AUTH=user:password, or bind 127.0.0.1"
        )
    argv = [sys.executable, "-m", "robotni.serve", "flower", f"--address={host}", f"--port={port}"]
    return argv, env


def enable_task_events() -> None:
    """Workers send task events only when asked (robotni/broker/celeryconfig.py). Flower asks first 5 s after its
    start: the running workers are asked now, so that Flower sees the jobs they run from its first moment."""
    from robotni.celery import app

    try:
        app.control.enable_events()
    except Exception:  # the broker is not up yet: Flower asks again every 5 s
        log.warning("could not ask the workers for task events yet", exc_info=True)


def main() -> None:
    current = settings()
    argv, env = command(current.flower_bind, current.flower_basic_auth)
    enable_task_events()
    os.execve(argv[0], argv, env)


if __name__ == "__main__":
    main()
