"""What a worker does around one run: build the spec, hold the lease, report progress. No Celery here."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from functools import cache
from pathlib import Path
from typing import Any

from robotni.config import Settings
from robotni.errors import RobotniError
from robotni.process_spec import Isolation
from robotni.runner import confinement, forkserver
from robotni.runner.run import Outcome, RunSpec, run, script_argv
from robotni.store import dependencies
from robotni.store.models import Job
from robotni.submission import check
from robotni.worker import leases
from robotni.worktypes import environments
from robotni.worktypes.registry import WorkerType

log = logging.getLogger(__name__)


def job_dir(settings: Settings, job_id: str) -> Path:
    return settings.jobs_dir / job_id


def job_argv(wtype: WorkerType, params: dict[str, Any], venv: str | None, settings: Settings) -> list[str]:
    """The job's command line as it starts; UnsafePath, InterpreterError or EnvNotReady when it must not run.

    The folders are checked again (robotni/submission/check.py checked them at submit; they may have changed),
    and a type's own environment is looked up now: at submit a worker may not have built it yet.
    """
    chosen = check.program(wtype, params, venv, settings)
    if chosen.venv_interpreter is not None:
        interpreter = chosen.venv_interpreter
    elif wtype.has_own_environment:
        interpreter = environments.interpreter(wtype.name, wtype.env, settings)
    else:
        interpreter = stdlib_python(settings)
    return script_argv(interpreter, chosen.script, params["args"] if wtype.script is None else [])


_stdlib_failed: set[Path] = set()


@cache
def _stdlib_env(built_envs_dir: Path) -> Path:
    return built_envs_dir / environments.env_key(())


def stdlib_python(settings: Settings) -> str:
    """The interpreter for types without an environment of their own: an empty venv of Robotni's interpreter.

    It is the environment a `dependencies = []` type gets: the standard library only, so Robotni's packages are
    invisible to jobs, and it starts ~10 ms faster than Robotni's own venv, whose editable install imports its
    finder (pathlib, urllib) at every start. Built once (a worker builds it at start, see `prepare`); if it
    cannot be built, jobs run with Robotni's interpreter as before.
    """
    folder = _stdlib_env(settings.built_envs_dir)
    if folder in _stdlib_failed:
        return sys.executable
    if not (folder / environments.READY_MARK).is_file():
        built = environments.build((), settings)
        if not built.ok:
            log.warning("standard-library environment failed (%s); jobs use %s", built.error, sys.executable)
            _stdlib_failed.add(folder)  # until this process restarts: not one failing build per job
            return sys.executable
    return str(folder / "bin" / "python")


def prepare(settings: Settings) -> None:
    """At worker start, before any job: the environment of types without one of their own."""
    stdlib_python(settings)


def start_fork_servers(types: list[WorkerType], settings: Settings, slots: int) -> None:
    """Before a pool takes jobs: a fork server per slot (`slots` jobs at once) for each `isolation = "fork"` type
    of its queues, so no job waits for one."""
    for wtype in types:
        if wtype.isolation is Isolation.FORK and wtype.script is not None:
            try:
                argv = job_argv(wtype, {}, None, settings)
            except RobotniError as exc:  # its environment is not ready: its jobs fail saying so
                log.warning("no fork server for type %s: %s", wtype.name, exc)
                continue
            forkserver.warm(argv[:3], wtype.preload, slots)


def parents_path(settings: Settings, job_id: str) -> Path:
    """$ROBOTNI_PARENTS: beside the job's log, the worker's to write and the job's to read (its folder is 0711)."""
    return job_dir(settings, job_id) / "parents.json"


def write_parents(job: Job, settings: Settings) -> None:
    """What each parent left, for a job with depends_on: id -> {type, status, result, step}."""
    parents = {
        parent.id: {"type": parent.type, "status": parent.status.value, "result": parent.result, "step": parent.step}
        for parent in dependencies.parents_of(job.id)
    }
    path = parents_path(settings, job.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(parents))
    path.chmod(0o644)  # readable by the job user, who can reach it but not list the folder


def operator_env(wtype: WorkerType, settings: Settings) -> dict[str, str]:
    """What an operator's tool asked for in its declaration: the API's URL and token, its data folder.

    Only such types get them: any other job's environment holds nothing of the worker's.
    """
    env = {}
    if wtype.api:
        env["ROBOTNI_API_URL"] = settings.api_url
        if settings.job_api_token:
            env["ROBOTNI_API_TOKEN"] = settings.job_api_token
    if wtype.data_folder is not None:
        env["ROBOTNI_DATA_FOLDER"] = str(settings.data_dir / wtype.data_folder)
    return env


def prepare_data_folder(wtype: WorkerType, settings: Settings) -> None:
    """The type's data folder, the job user's alone: a root worker's data folder is closed to that user."""
    if wtype.data_folder is None:
        return
    folder = settings.data_dir / wtype.data_folder
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    user = confinement.resolved_user(settings.job_user)
    if user.uid is not None and user.gid is not None:  # a switched user (JobUser.switches)
        os.chown(folder, user.uid, user.gid)


def spec_for(job: Job, wtype: WorkerType, settings: Settings) -> RunSpec:
    has_parents = job.on_parent_failure is not None  # set only on a job submitted with depends_on
    return RunSpec(
        argv=job_argv(wtype, job.params, job.venv, settings),
        params=job.params,
        workdir=job_dir(settings, job.id),
        soft_limit=wtype.soft_time_limit,
        hard_limit=wtype.hard_time_limit,
        kill_grace=settings.kill_grace,
        log_max_bytes=settings.log_max_bytes,
        result_max_bytes=settings.result_max_bytes,
        limits=wtype.limits,
        user=confinement.resolved_user(settings.job_user),
        isolation=wtype.isolation,
        preload=wtype.preload,
        env={
            "ROBOTNI_JOB_ID": job.id,
            "ROBOTNI_JOB_TYPE": job.type,
            "ROBOTNI_PROJECT": job.project,
            "ROBOTNI_ATTEMPT": str(job.attempts),
            **({"ROBOTNI_PARENTS": str(parents_path(settings, job.id))} if has_parents else {}),
            **operator_env(wtype, settings),
        },
    )


def execute(
    job: Job, wtype: WorkerType, settings: Settings, check_now: threading.Event
) -> tuple[Outcome, dict[str, Any]]:
    """Run the job's script under a lease; the outcome and the last visible values to record with it.

    Setting check_now makes the lease keeper read the job's cancel mark at once instead of at its next beat.
    """
    spec = spec_for(job, wtype, settings)
    if "ROBOTNI_PARENTS" in spec.env:
        write_parents(job, settings)
    prepare_data_folder(wtype, settings)
    with leases.keeper(settings).kept(leases.Lease(job, spec, check_now)) as lease:
        outcome = run(spec, cancel=lease.cancel, on_progress=lease.report_progress)
    chunk = lease.unshipped()  # recorded with the outcome: a finished job's output is all in the store
    output = {"log_bytes": chunk.start + len(chunk.data), "log_chunk": chunk} if chunk else {}
    return outcome, {**(lease.progress or {}), **output}
