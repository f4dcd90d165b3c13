"""`python -m robotni.serve worker|beat|flower [options]`: Celery's own worker, beat and Flower commands on
Robotni's app, each process loading only what its role needs.

`celery -A robotni worker` works too, but the `celery` program imports every command it has (its REPL brings
prompt_toolkit) and every installed plugin (Flower, with Tornado) before it looks at its arguments:
about 25 MiB more in each of the stack's Celery processes (docs/benchmarks.md). Here only the named command is
imported, with the options Celery documents for it, and the app imports only its role's task modules: a worker
the tasks, beat the schedule dispatch, Flower none.
"""

from __future__ import annotations

import gc
import importlib
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from celery import Celery

# role -> (the module of Celery's click command, its name, the app's modules that role needs)
ROLES = {
    "worker": ("celery.bin.worker", "worker", ["robotni.worker.tasks", "robotni.worker.lifecycle"]),
    "beat": ("celery.bin.beat", "beat", ["robotni.schedules.beat"]),
    "flower": ("flower.command", "flower", []),
}


def prepare(role: str) -> tuple[click.Command, Celery]:
    """The role's click command and Robotni's app, set to import only that role's modules."""
    module, name, include = ROLES[role]
    command: click.Command = getattr(importlib.import_module(module), name)
    from robotni.celery import app

    app.conf.include = include
    if role == "worker":
        from celery.signals import worker_before_create_process

        worker_before_create_process.connect(_freeze, weak=False)
    return command, app


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ROLES:
        raise SystemExit(f"usage: python -m robotni.serve {{{','.join(ROLES)}}} [options] (--help after the role)")
    command, app = prepare(args[0])
    from celery.bin.base import CLIContext

    context = CLIContext(app=app, no_color=False, workdir=None, quiet=False)
    # A group of the one command, as its parent: Flower reads the parent's options.
    group = click.Group("python -m robotni.serve", commands={args[0]: command})
    group.main(args=args, prog_name="python -m robotni.serve", obj=context)


def _freeze(**_: Any) -> None:
    """Before the prefork pool forks a process: what the main process loaded stays shared with it, since the
    collector no longer writes to those objects (docs/benchmarks.md)."""
    from robotni.store import engine

    engine.before_fork()
    gc.freeze()


if __name__ == "__main__":
    main()
