"""The `robotni` command: a project folder and its stack, and everyday use through the HTTP API like any client."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import click
from honcho.environ import parse, parse_procfile

from robotni import config, stackrun
from robotni.errors import RobotniError
from robotni.runner import confinement
from robotni.status import JobStatus
from robotni.worktypes import environments
from robotni.worktypes.registry import registry

# How often `submit --wait` asks; the API answers 304 cheaply while nothing changed.
WAIT_POLL_SECONDS = 0.2


def _api_url() -> str:
    return config.settings().api_url + "/api/worker"


def _call(method: str, path: str, body: Any = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(_api_url() + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.load(response)  # every endpoint the CLI calls answers an object
            return answer
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


class _Commands(click.Group):
    """A RobotniError (a setting, an unknown type, an outdated schema) ends a command with its message alone."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RobotniError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Commands)
def main() -> None:
    """Robotni: run registered Python scripts as jobs."""


def _template(folder: Traversable, prefix: str = "") -> dict[str, bytes]:
    """Relative path -> content of each file `init` writes (pip byte-compiles the example workers: not those)."""
    found: dict[str, bytes] = {}
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name != "__pycache__":
            found.update(_template(entry, f"{prefix}{entry.name}/"))
        elif entry.is_file():
            found[prefix + entry.name] = entry.read_bytes()
    return found


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Create a project: workers/, Procfile, .env."""
    template = _template(files("robotni") / "project_template")
    taken = sorted(name for name in template if os.path.lexists(directory / name))
    if taken:
        raise click.ClickException(f"{directory}: {', '.join(taken)} already exist; nothing was written")
    for name, content in sorted(template.items()):
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        with open(directory / name, "xb") as f:  # x: never overwrite, even a file created since the check
            f.write(content)
        click.echo(f"created {directory / name}")
    cd = "" if directory.resolve() == Path.cwd() else f"cd {shlex.quote(str(directory))} && "
    click.echo(f"next: {cd}robotni start   (the API on http://127.0.0.1:8000/, Flower on :5555)")


def _read_dotenv(path: Path) -> None:
    """The folder's .env under the environment: a variable set in the shell wins, as with python-dotenv."""
    if path.is_file():
        for name, value in parse(path.read_text()).items():
            os.environ.setdefault(name, value)


def _keep_jobs_as_root_if_nobody_cannot_run_python() -> None:
    """As `make start`: a root stack whose Python nobody cannot run (a pyenv under /root) would fail every job."""
    if os.geteuid() != 0 or "ROBOTNI_JOB_USER" in os.environ:
        return
    problem = confinement.check_interpreter_for(confinement.job_user(""), sys.executable)
    if problem:
        os.environ["ROBOTNI_JOB_USER"] = "root"
        click.echo(f"jobs run as root: nobody cannot run {sys.executable} (ROBOTNI_JOB_USER overrides)", err=True)


def processes(procfile: str, queues: list[str]) -> list[tuple[str, str, dict[str, str]]]:
    """(name, shell command, extra environment) per process: the Procfile's `worker` line once per queue."""
    found = []
    for name, command in parse_procfile(procfile).processes.items():
        if name == "worker":
            found += [(f"worker.{queue}", command, {"ROBOTNI_QUEUE": queue}) for queue in queues]
        else:
            found.append((name, command, {}))
    return found


@main.command()
def start() -> None:
    """Run web, a worker per queue, beat and Flower."""
    # Settings first: ROBOTNI_WORKERS_DIR decides the queues, ROBOTNI_JOB_USER the check below.
    _read_dotenv(Path(".env"))
    # A person reads this console (honcho's pipes are no terminal, so `auto` would pick JSON): text lines.
    os.environ.setdefault("ROBOTNI_LOG_FORMAT", "text")
    _keep_jobs_as_root_if_nobody_cannot_run_python()
    try:
        queues = registry().queues
    except RobotniError as exc:
        raise click.ClickException(f"{exc} (`robotni init` creates a project folder)") from None
    # The folder's own Procfile if it has one (a user's edits count), else the one `init` writes.
    local = Path("Procfile")
    procfile = local.read_text() if local.is_file() else (files("robotni") / "project_template/Procfile").read_text()
    # A venv need not be activated: celery and gunicorn are installed next to its interpreter.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])
    stackrun.migrate_embedded_store()
    manager = stackrun.ThreadedManager()
    for name, command, extra in processes(procfile, queues):
        # `exec`: the shell that expands the line's variables becomes the line's program, one process less each.
        manager.add_process(name, f"exec {command}", env={**os.environ, "PATH": path, **extra})
    manager.loop()  # SIGINT or SIGTERM: SIGTERM to every process group, SIGKILL to what is left after 5 s
    sys.exit(manager.returncode)


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
    while wait and not JobStatus(job["status"]).is_terminal:
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


@main.group(name="workflow")
def workflow_group() -> None:
    """Workflows: named steps (jobs) and the steps each one waits for."""


def _print_workflow(found: dict[str, Any]) -> None:
    click.echo(f"workflow {found['id']} {found['name']!r} (project {found['project']}): {found['status']}")
    for step in found["steps"]:
        after = f"  after {', '.join(step['depends_on'])}" if step["depends_on"] else ""
        click.echo(f"  {step['name']:20} {step['job']['status']:10} {step['job_id']}{after}")


@workflow_group.command(name="submit")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait", is_flag=True, help="poll until the workflow ends; exit 1 unless it completed")
def workflow_submit(path: Path, wait: bool) -> None:
    """Submit a workflow from a JSON or YAML file: {"project", "name", "steps": [...]}."""
    import yaml  # here: `robotni start`, which stays running, has no use for it

    body = yaml.safe_load(path.read_text())  # YAML reads JSON too
    found = _call("POST", "/workflows", body)
    while wait and found["status"] == "running":
        time.sleep(WAIT_POLL_SECONDS)
        found = _call("GET", f"/workflows/{found['id']}")
    _print_workflow(found)
    if wait and found["status"] != "completed":
        sys.exit(1)


@workflow_group.command(name="show")
@click.argument("workflow_id")
def workflow_show(workflow_id: str) -> None:
    """Print a workflow's status and each step's, parents first."""
    _print_workflow(_call("GET", f"/workflows/{workflow_id}"))


@main.group(name="venvs")
def venvs_group() -> None:
    """The worker types' own Python environments (PEP 723 dependencies, or a named venv)."""


@venvs_group.command(name="list")
def venvs_list() -> None:
    """Each type's environment and whether it is ready."""
    for name, wtype in sorted(registry().items()):
        env = environments.status(wtype.env, config.settings())
        shown = ", ".join(env.environment.get("dependencies", [])) or env.environment.get("venv", "")
        state = "ready" if env.ready else f"NOT READY: {env.error}"
        click.echo(f"{name:20} {env.environment['kind']:12} {shown}  {state}")


@venvs_group.command(name="build")
@click.argument("type_names", nargs=-1)
def venvs_build(type_names: tuple[str, ...]) -> None:
    """Build the environments of the named types (all by default); exit 1 if any failed."""
    types = [registry()[name] for name in type_names] if type_names else list(registry().values())
    results = environments.build_types([(t.name, t.env) for t in types], config.settings())
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
    from robotni.store.engine import make_engine

    engine = make_engine(config.settings().database_url)
    migrate.upgrade(engine)
    click.echo(f"schema at {migrate.current(engine)}")


@db.command()
def current() -> None:
    """Print the job store's schema revision and the one this version needs."""
    from robotni.store import migrate
    from robotni.store.engine import make_engine

    click.echo(f"database: {migrate.current(make_engine(config.settings().database_url))}, code: {migrate.head()}")


def _since(text: str | None) -> datetime | None:
    """An ISO 8601 date or time; without a timezone it is UTC, as every time Robotni shows."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 date or time", param_hint="--since") from None
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


@main.command(name="export")
@click.option("--project", help="only this project's schedules, webhooks, workflows and jobs")
@click.option("--since", help="only jobs (and workflows) created at or after this ISO 8601 time, UTC by default")
@click.option("--jobs/--no-jobs", default=True, show_default=True, help="jobs with their attempts, or only schedules")
@click.option("--logs", is_flag=True, help="with each job's stored output")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="a file instead of stdout")
def export_store(project: str | None, since: str | None, jobs: bool, logs: bool, output: Path | None) -> None:
    """Write the job store (ROBOTNI_DATABASE_URL) as JSON Lines, for `robotni import` (docs/export.md)."""
    from robotni.store.engine import engine
    from robotni.transfer.export import Scope, lines

    scope = Scope(project=project, since=_since(since), jobs=jobs, logs=logs)
    if output is None:
        sys.stdout.writelines(lines(engine(), scope))
        return
    partial = output.with_name(f".{output.name}.partial")  # the file appears whole or not at all
    with open(partial, "w") as f:
        f.writelines(lines(engine(), scope))
    partial.replace(output)


@main.command(name="import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_store(path: Path) -> None:
    """Load an export into the job store: all of it or nothing; rows the store already has are skipped."""
    from robotni.store.engine import engine
    from robotni.transfer.checks import ImportRefused
    from robotni.transfer.importer import load
    from robotni.transfer.records import KINDS

    try:
        summary = load(engine(), path)
    except ImportRefused as exc:
        raise click.ClickException(f"{path}: {exc}; nothing was imported") from None
    for name in KINDS:
        click.echo(f"{name:13} {summary.added[name]:8} added {summary.skipped[name]:8} already in the store")
