"""Each worker type's own Python environment, built before any of its jobs runs, never inside one.

A type that declares `dependencies` in its PEP 723 block runs in `<data_dir>/envs/<key>`: one virtualenv per
distinct dependency set, the key a hash of that set and the interpreter it is built from. A type with
`venv = "name"` runs in that pre-made venv under ROBOTNI_VENVS_DIR. Any other type runs with Robotni's interpreter.
Workers build what their queues' types need at start (in the main process, before they take a job) and
`robotni venvs build` builds on demand; a failed build is recorded, so its type's jobs fail at once with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet

from robotni.config import Settings
from robotni.errors import DeclarationError, EnvNotReady, UnsafePath
from robotni.paths import VENV_NAME_RE, venv_python

log = logging.getLogger(__name__)
# Written last, atomically: an env folder without it is a build that has not finished (or died half-way).
READY_MARK = "robotni-env.json"
# A failed build's reason is kept to this size; pip's last lines say what went wrong.
ERROR_MAX_CHARS = 2000
# pip's per-read network timeout and retries: a machine without network fails in seconds, not minutes.
PIP_SOCKET_TIMEOUT = 30
PIP_RETRIES = 1
NOT_BUILT = "not built yet: a worker of its queue builds it when it starts, or run `robotni venvs build`"


@dataclass(frozen=True)
class EnvSpec:
    """Where a type's jobs get their interpreter, as its declaration says: a value the registry holds per type."""

    dependencies: tuple[str, ...] | None = None  # PEP 723; None: no environment built for it
    requires_python: str | None = None
    venv: str | None = None  # a pre-made venv in ROBOTNI_VENVS_DIR, by name

    @property
    def is_own(self) -> bool:
        return self.dependencies is not None or self.venv is not None


class EnvKind(str, Enum):
    ROBOTNI = "robotni"  # Robotni's own interpreter: the type declares neither dependencies nor venv
    DEPENDENCIES = "dependencies"  # built by Robotni from the PEP 723 dependencies
    VENV = "venv"  # a pre-made venv under ROBOTNI_VENVS_DIR, by name


@dataclass(frozen=True)
class EnvStatus:
    environment: dict[str, Any]  # what GET /types shows
    ready: bool
    error: str | None = None
    interpreter: str | None = None  # absolute; None for Robotni's own


@dataclass(frozen=True)
class BuildResult:
    key: str
    ok: bool
    cached: bool = False
    error: str | None = None
    seconds: float = 0.0
    types: list[str] = field(default_factory=list)  # the worker types that use it


# --- the declaration ----------------------------------------------------------------------------------------


def parse_dependencies(value: Any) -> tuple[str, ...] | None:
    """PEP 723 `dependencies`: normalized and sorted, so equal sets share one environment; None when absent."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DeclarationError("dependencies must be a list of strings (PEP 508 requirements)")
    try:
        # Parsing also refuses anything that would reach the installer as an option ("--index-url ...").
        return tuple(sorted({str(Requirement(item)) for item in value}))
    except InvalidRequirement as exc:
        raise DeclarationError(f"dependencies: {exc}") from None


def parse_requires_python(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise DeclarationError("requires-python must be a string such as '>=3.11'")
    try:
        SpecifierSet(value)
    except InvalidSpecifier as exc:
        raise DeclarationError(f"requires-python: {exc}") from None
    return value


def parse_venv(value: Any, dependencies: tuple[str, ...] | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not VENV_NAME_RE.match(value):
        raise DeclarationError(f"venv must be the plain name of a venv in ROBOTNI_VENVS_DIR, not {value!r}")
    if dependencies is not None:
        raise DeclarationError("declare dependencies (Robotni builds the environment) or venv (a pre-made one)")
    return value


# --- where an environment is and whether it is ready --------------------------------------------------------


def env_key(dependencies: Iterable[str]) -> str:
    """sha256 of the dependency set, the interpreter it is built from (symlinks resolved) and its version."""
    identity = {
        "dependencies": sorted(set(dependencies)),
        "interpreter": os.path.realpath(sys.executable),
        "version": sys.version,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def python_mismatch(requires_python: str | None) -> str | None:
    """Why this interpreter does not satisfy requires-python, or None when it does."""
    version = platform.python_version()
    if requires_python is None or SpecifierSet(requires_python).contains(version, prereleases=True):
        return None
    return f"requires-python {requires_python!r} excludes this interpreter's Python {version}"


def status(spec: EnvSpec, settings: Settings) -> EnvStatus:
    """The type's environment, whether its jobs can start, and why not; reads a few files, never builds."""
    if spec.venv is not None:
        shown: dict[str, Any] = {"kind": EnvKind.VENV.value, "venv": spec.venv}
        try:
            return EnvStatus(shown, True, interpreter=venv_python(settings.venvs_dir, spec.venv))
        except UnsafePath as exc:
            return EnvStatus(shown, False, str(exc))
    if spec.dependencies is None:
        return EnvStatus({"kind": EnvKind.ROBOTNI.value}, True)
    key = env_key(spec.dependencies)
    shown = {
        "kind": EnvKind.DEPENDENCIES.value,
        "dependencies": list(spec.dependencies),
        "requires_python": spec.requires_python,
        "key": key,
    }
    mismatch = python_mismatch(spec.requires_python)
    if mismatch:
        return EnvStatus(shown, False, mismatch)
    folder = settings.built_envs_dir / key
    if (folder / READY_MARK).is_file():
        return EnvStatus(shown, True, interpreter=str(folder / "bin" / "python"))
    try:
        error = (settings.built_envs_dir / f"{key}.error").read_text(encoding="utf-8")
    except FileNotFoundError:
        error = NOT_BUILT
    return EnvStatus(shown, False, error)


def interpreter(type_name: str, spec: EnvSpec, settings: Settings) -> str:
    """The absolute interpreter for the type's jobs; EnvNotReady with the reason when its environment is not."""
    current = status(spec, settings)
    if not current.ready:
        raise EnvNotReady(f"the environment of type {type_name!r} is not ready: {current.error}")
    return current.interpreter or sys.executable


# --- building -----------------------------------------------------------------------------------------------


def pick_installer() -> str:
    """uv when it is on PATH (much faster), else `venv` and pip."""
    return "uv" if shutil.which("uv") else "pip"


def build_types(
    specs: Iterable[tuple[str, EnvSpec]], settings: Settings, installer: str | None = None
) -> list[BuildResult]:
    """Build each distinct environment these (type name, spec) need; a failure stays with its own types."""
    wanted: dict[tuple[str, ...], list[str]] = {}
    for name, spec in specs:
        if spec.dependencies is not None and python_mismatch(spec.requires_python) is None:
            wanted.setdefault(spec.dependencies, []).append(name)
    results = []
    for dependencies, names in wanted.items():
        result = replace(build(dependencies, settings, installer), types=names)
        if result.ok:
            how = "reused" if result.cached else f"built in {result.seconds:.1f} s"
            log.info("environment %s for %s: %s", result.key[:12], ", ".join(names), how)
        else:
            log.error("environment %s for %s failed: %s", result.key[:12], ", ".join(names), result.error)
        results.append(result)
    return results


def build(dependencies: tuple[str, ...], settings: Settings, installer: str | None = None) -> BuildResult:
    """The environment for one dependency set, built unless it is there; a lock file makes concurrent starts wait."""
    key = env_key(dependencies)
    root = settings.built_envs_dir
    root.mkdir(parents=True, exist_ok=True)
    folder, error_file = root / key, root / f"{key}.error"
    with open(root / f"{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel even if this process dies
        if (folder / READY_MARK).is_file():
            return BuildResult(key, True, cached=True)
        started = time.monotonic()
        # Built in place rather than renamed into place: a venv is not relocatable (installed scripts name their
        # folder); the ready mark, written last, is what makes it visible at once.
        shutil.rmtree(folder, ignore_errors=True)  # what a build that died half-way left
        used = installer or pick_installer()
        try:
            _install(folder, dependencies, used, time.monotonic() + settings.env_build_timeout)
        except EnvNotReady as exc:
            shutil.rmtree(folder, ignore_errors=True)
            _write(error_file, f"build failed ({used}): {exc}"[:ERROR_MAX_CHARS])
            return BuildResult(key, False, error=error_file.read_text(), seconds=time.monotonic() - started)
        seconds = time.monotonic() - started
        mark = {"dependencies": list(dependencies), "python": sys.version, "installer": used, "seconds": seconds}
        _write(folder / READY_MARK, json.dumps(mark))
        error_file.unlink(missing_ok=True)
        return BuildResult(key, True, seconds=seconds)


def _install(folder: Path, dependencies: tuple[str, ...], installer: str, deadline: float) -> None:
    """A venv without system site packages (Robotni's packages stay invisible), then the dependencies."""
    python = str(folder / "bin" / "python")
    if installer == "uv":
        uv = shutil.which("uv") or "uv"
        _run([uv, "venv", "--quiet", "--no-project", "--python", sys.executable, str(folder)], deadline)
        install = [uv, "pip", "install", "--quiet", "--python", python]
    else:
        _run([sys.executable, "-m", "venv", "--without-pip", str(folder)], deadline)
        # Robotni's own pip installs into the new venv: no copy of pip in every environment.
        install = [sys.executable, "-m", "pip", "--python", python, "install", "--no-input", "--quiet"]
        install += ["--disable-pip-version-check", "--timeout", str(PIP_SOCKET_TIMEOUT), "--retries", str(PIP_RETRIES)]
    if dependencies:
        _run([*install, *dependencies], deadline)


def _run(argv: list[str], deadline: float) -> None:
    """Run a build step in its own session, so a timeout kills whatever it started."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise EnvNotReady("timed out (ROBOTNI_ENV_BUILD_TIMEOUT)")
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        output, _ = proc.communicate(timeout=remaining)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise EnvNotReady(f"timed out after {remaining:.0f} s (ROBOTNI_ENV_BUILD_TIMEOUT)") from None
    if proc.returncode != 0:
        raise EnvNotReady(f"exit {proc.returncode}: {_summary(output.decode(errors='replace'))}")


def _summary(output: str) -> str:
    """pip's and uv's lines that say what failed, without the noise around them."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith(("error", "cause"))]
    return " ".join(errors or lines[-10:]) or "no output"


def _write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
