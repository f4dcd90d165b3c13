"""The `robotni` command: everyday use from a terminal, through the HTTP API like any client."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import click

from robotni import config
from robotni.worktypes import environments
from robotni.worktypes.registry import registry

TERMINAL = {"completed", "failed", "cancelled", "timed_out"}
# How often `submit --wait` asks; the API answers 304 cheaply while nothing changed.
WAIT_POLL_SECONDS = 0.2


def _api_url() -> str:
    return os.environ.get("ROBOTNI_API_URL", f"http://{config.settings().bind}") + "/api/worker"


def _call(method: str, path: str, body: Any = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(_api_url() + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"{exc.code}: {exc.read().decode(errors='replace')}") from None
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach {_api_url()}: {exc.reason}") from None


def _parse_param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep:
        raise click.BadParameter(f"{text!r}: use key=value")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value  # a bare word is a string


@click.group()
def main() -> None:
    """Robotni: run registered Python scripts as jobs."""


@main.command()
def types() -> None:
    """List the worker types found in ROBOTNI_WORKERS_DIR."""
    for name, wtype in sorted(registry().items()):
        click.echo(f"{name:20} queue={wtype.queue:10} soft={wtype.soft_time_limit:g}s  {wtype.description}")


@main.command(name="config")
def show_config() -> None:
    """Print every setting and its current value."""
    for name, value in config.describe():
        click.echo(f"{name}={value}")


@main.command()
@click.argument("type_name")
@click.option("-p", "--param", "params", multiple=True, help="key=value; the value is JSON if it parses")
@click.option("--project", default="default")
@click.option("--wait", is_flag=True, help="poll until the job ends; exit 1 unless it completed")
def submit(type_name: str, params: tuple[str, ...], project: str, wait: bool) -> None:
    """Submit a job and print it as JSON."""
    job = _call("POST", "/jobs", {"type": type_name, "params": dict(map(_parse_param, params)), "project": project})
    while wait and job["status"] not in TERMINAL:
        time.sleep(WAIT_POLL_SECONDS)
        job = _call("GET", f"/jobs/{job['id']}")
    click.echo(json.dumps(job, indent=2))
    if wait and job["status"] != "completed":
        sys.exit(1)


@main.command()
@click.argument("job_id")
def show(job_id: str) -> None:
    """Print one job as JSON."""
    click.echo(json.dumps(_call("GET", f"/jobs/{job_id}"), indent=2))


@main.group(name="venvs")
def venvs_group() -> None:
    """The worker types' own Python environments (PEP 723 dependencies, or a named venv)."""


@venvs_group.command(name="list")
def venvs_list() -> None:
    """Each type's environment and whether it is ready."""
    for name, wtype in sorted(registry().items()):
        env = wtype.describe()
        shown = ", ".join(env["environment"].get("dependencies", [])) or env["environment"].get("venv", "")
        state = "ready" if env["ready"] else f"NOT READY: {env['error']}"
        click.echo(f"{name:20} {env['environment']['kind']:12} {shown}  {state}")


@venvs_group.command(name="build")
@click.argument("type_names", nargs=-1)
def venvs_build(type_names: tuple[str, ...]) -> None:
    """Build the environments of the named types (all by default); exit 1 if any failed."""
    types = [registry()[name] for name in type_names] if type_names else list(registry().values())
    results = environments.build_types(types, config.settings())
    for result in results:
        how = "reused" if result.cached else f"built in {result.seconds:.1f} s" if result.ok else result.error
        click.echo(f"{', '.join(result.types)}: {result.key[:12]} {how}")
    if not all(result.ok for result in results):
        sys.exit(1)


@main.group()
def db() -> None:
    """The job store's schema."""


@db.command()
def upgrade() -> None:
    """Migrate the job store (ROBOTNI_DATABASE_URL) to this version's schema."""
    from robotni.store import migrate
    from robotni.store.models import make_engine

    engine = make_engine(config.settings().database_url)
    migrate.upgrade(engine)
    click.echo(f"schema at {migrate.current(engine)}")


@db.command()
def current() -> None:
    """Print the job store's schema revision and the one this version needs."""
    from robotni.store import migrate
    from robotni.store.models import make_engine

    click.echo(f"database: {migrate.current(make_engine(config.settings().database_url))}, code: {migrate.head()}")
