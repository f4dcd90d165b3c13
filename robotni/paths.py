"""Names from a request or a declaration that become paths: only inside the configured folders, never a free path."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from robotni.errors import UnsafeScript, UnsafeVenv

VENV_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# Far above any real script path; refusing longer ones early keeps error messages and checks cheap.
MAX_SCRIPT_PATH = 1024


def script_in(folder: Path, relative: str) -> Path:
    """The regular file `relative` names inside folder; no absolute path, `..`, symlink or NUL."""
    if not relative or len(relative) > MAX_SCRIPT_PATH:
        raise UnsafeScript(f"script path must be 1 to {MAX_SCRIPT_PATH} characters")
    if "\0" in relative:
        raise UnsafeScript("script path contains a NUL byte")
    parts = Path(relative).parts
    if Path(relative).is_absolute() or ".." in parts:
        raise UnsafeScript("script path must be relative to the scripts folder, without '..'")
    if not parts:  # ".", "./": the scripts folder itself
        raise UnsafeScript(f"script {relative!r} is the scripts folder, not a script in it")
    path = folder
    for part in parts:
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            raise UnsafeScript(f"no script {relative!r} in the scripts folder") from None
        except OSError as exc:
            raise UnsafeScript(f"script {relative!r} cannot be read: {exc.strerror}") from None
        if stat.S_ISLNK(mode):
            raise UnsafeScript(f"script path {relative!r} goes through a symlink")
    if not stat.S_ISREG(mode):
        raise UnsafeScript(f"script {relative!r} is not a regular file")
    return path


def venv_python(folder: Path, name: str) -> str:
    """`<folder>/<name>/bin/python` for a venv name; the venv itself must be a real folder inside folder."""
    if not VENV_NAME_RE.match(name):
        raise UnsafeVenv(f"venv must be a plain name matching {VENV_NAME_RE.pattern}")
    venv = folder / name
    if venv.is_symlink() or not (venv / "pyvenv.cfg").is_file():
        raise UnsafeVenv(f"no virtualenv named {name!r} in the venvs folder")
    python = venv / "bin" / "python"
    if not python.exists():
        raise UnsafeVenv(f"virtualenv {name!r} has no bin/python")
    # Not resolved: the venv's own path is what makes Python use its site-packages.
    return str(python)
