"""Job start-up in a type's own environment against its bare interpreter: `python -m bench.venvs [--runs N]`.

Builds one environment as a worker does (robotni.venvs.build, in a temporary data folder; no dependencies unless
`--dep` names some, so it needs no network), then times, interleaved so all see the same machine load:
- bare: `<env>/bin/python -I -c pass`, one process at a time (the issue's yardstick);
- job process: the job's own command from `job_argv` (finds the environment, checks the interpreter), started as
  the runner starts it (own session, the job's clean environment, params on stdin, output on pipes);
- runner, env: the same no-op job through `runner.run` (job folder, params file, fork with the child set-up that
  sets limits and the parent-death signal, output pump, outcome);
- runner, Robotni: the same through `runner.run` with Robotni's own interpreter, for what the runner costs anyway.
The environment is within its budget when the job process is at most 1.2x bare.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from robotni import config
from robotni.runner.run import RunSpec, run
from robotni.status import JobStatus
from robotni.worker.execution import job_argv
from robotni.worktypes import environments
from robotni.worktypes.environments import EnvSpec
from robotni.worktypes.registry import WorkerType

NOOP = Path(__file__).resolve().parent / "workers" / "noop.py"
LIMIT = 1.2


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def _row(name: str, samples: list[float], bare: float) -> str:
    median, p90 = statistics.median(samples), statistics.quantiles(samples, n=10)[8]
    return f"| {name} | {median:.1f} ms | {p90:.1f} ms | {median / bare:.2f}x |"


class Bench:
    def __init__(self, settings: config.Settings, wtype: WorkerType):
        self.settings, self.wtype, self.count = settings, wtype, 0
        self.robotni = WorkerType("bench-robotni", NOOP, soft_time_limit=30)
        self.scratch = settings.data_dir / "scratch"
        self.scratch.mkdir(parents=True)
        self.params = settings.data_dir / "params.json"
        self.params.write_text("{}")

    def bare(self) -> None:
        subprocess.run(
            [environments.interpreter(self.wtype.name, self.wtype.env, self.settings), "-I", "-c", "pass"], check=True
        )

    def job_process(self) -> None:
        argv = job_argv(self.wtype, {}, None, self.settings)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(self.scratch)}
        with open(self.params, "rb") as stdin:
            done = subprocess.run(
                argv, stdin=stdin, capture_output=True, cwd=self.scratch, env=env, start_new_session=True
            )
        assert done.returncode == 0, done.stderr

    def runner(self, wtype: WorkerType) -> None:
        self.count += 1
        spec = RunSpec(
            argv=job_argv(wtype, {}, None, self.settings),
            params={},
            workdir=self.settings.jobs_dir / str(self.count),
            soft_limit=wtype.soft_time_limit,
            hard_limit=wtype.hard_time_limit,
        )
        outcome = run(spec)
        assert outcome.status is JobStatus.COMPLETED, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="samples of each")
    parser.add_argument("--dep", action="append", default=[], help="a dependency to install (needs the network)")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="robotni-bench-venvs-"))
    os.environ["ROBOTNI_DATA_DIR"] = str(base / "var")
    settings = config.load_settings()
    try:
        wtype = WorkerType(
            "bench-env", NOOP, env=EnvSpec(dependencies=environments.parse_dependencies(args.dep)), soft_time_limit=30
        )
        built = environments.build(wtype.env.dependencies, settings)
        assert built.ok, built.error
        bench = Bench(settings, wtype)
        measures = {
            "bare: `<env>/bin/python -I -c pass`": bench.bare,
            "job process in the env (`job_argv`, own session, clean env, stdin, pipes)": bench.job_process,
            "job through `runner.run`, in the env": lambda: bench.runner(wtype),
            "job through `runner.run`, Robotni's interpreter": lambda: bench.runner(bench.robotni),
        }
        for action in measures.values():  # warm the page cache and the interpreters' own files
            for _ in range(5):
                action()
        samples: dict[str, list[float]] = {name: [] for name in measures}
        for _ in range(args.runs):
            for name, action in measures.items():
                samples[name].append(_timed(action))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    bare = statistics.median(next(iter(samples.values())))
    job = statistics.median(samples[list(measures)[1]])
    print(
        f"Machine: {platform.node()}, {platform.machine()}, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}; {args.runs} runs each, interleaved; environment built in "
        f"{built.seconds:.2f} s with {environments.pick_installer()}, dependencies: {', '.join(args.dep) or 'none'}\n"
    )
    print("| measure | median | p90 | / bare |\n|---|---|---|---|")
    for name, values in samples.items():
        print(_row(name, values, bare))
    verdict = "within" if job / bare <= LIMIT else "OVER"
    print(f"\nJob process in the env: {job / bare:.2f}x bare, {verdict} the {LIMIT}x budget.")


if __name__ == "__main__":
    main()
