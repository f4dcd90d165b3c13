"""Worker types: each `workers/<name>.py` declares itself in a PEP 723 block, read as text, never imported."""

from __future__ import annotations

import random
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from robotni.config import settings
from robotni.errors import ConfigError, DeclarationError, UnknownType
from robotni.process_spec import Isolation, Limits
from robotni.status import Priority
from robotni.worktypes import environments, scheduling, schemas
from robotni.worktypes.environments import EnvSpec
from robotni.worktypes.scheduling import Concurrency, Rate

# PEP 723's reference regular expression.
BLOCK_RE = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")
# Queue names end up in broker file names and exchange names: keep them plain.
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
DEFAULT_QUEUE = "default"
# A forgotten limit must not let a stuck script hold a worker forever.
DEFAULT_SOFT_LIMIT = 300.0
# Seconds between SIGTERM at the soft limit and SIGKILL, when the type gives no hard limit.
DEFAULT_HARD_MARGIN = 10.0
# The generic type: runs a script from ROBOTNI_SCRIPTS_DIR named in its params (robotni.paths checks it).
PYTHON_SCRIPT = "python-script"
PYTHON_SCRIPT_PARAMS = {
    "type": "object",
    "required": ["script"],
    "additionalProperties": False,
    "properties": {
        "script": {
            "type": "string",
            "minLength": 1,
            "maxLength": 1024,
            "description": "relative to the scripts folder",
        },
        "args": {
            "type": "array",
            "items": {"type": "string", "maxLength": 4096, "pattern": "^[^\\x00]*$"},  # no NUL: argv cannot hold one
            "maxItems": 256,
            "default": [],
        },
    },
}
KNOWN_KEYS = {
    *("description", "queue", "soft_time_limit", "hard_time_limit", "params", "retry", "limits", "venv"),
    *("isolation", "preload", "priority", "concurrency", "rate", "api", "data_folder"),
}
# Folders Robotni keeps in its data folder (robotni/config.py): no type's `data_folder` may be one of them.
ROBOTNI_FOLDERS = {"jobs", "envs", "broker", "prometheus", "scripts", "venvs"}
# A module name as `import` takes it: what a fork server may import before any job of its type.
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
RETRY_KEYS = {"max_retries", "backoff", "backoff_max", "on_timeout"}


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 0
    backoff: float = 2.0  # first delay in seconds; doubles per attempt
    backoff_max: float = 300.0
    on_timeout: bool = False

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1

    def delay(self, attempt: int) -> float:
        """Seconds before the next attempt: doubling from `backoff`, capped, with jitter so retries spread."""
        return min(self.backoff_max, self.backoff * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class WorkerType:
    name: str
    script: Path | None  # None: the script comes from the params (the generic python-script type)
    description: str = ""
    queue: str = DEFAULT_QUEUE
    soft_time_limit: float = DEFAULT_SOFT_LIMIT
    hard_time_limit: float = DEFAULT_SOFT_LIMIT + DEFAULT_HARD_MARGIN
    params_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limits: Limits = field(default_factory=Limits)  # what its process may use (robotni/runner/confinement.py)
    env: EnvSpec = field(default_factory=EnvSpec)  # its own environment, if any (robotni/worktypes/environments.py)
    isolation: Isolation = Isolation.PROCESS  # FORK: each job is a child of a server with `preload` imported
    preload: tuple[str, ...] = ()
    priority: Priority = Priority.NORMAL  # a job's default; a submit may name another
    concurrency: Concurrency | None = None  # at most `limit` of a key running at once (robotni/store/claims.py)
    rate: Rate | None = None  # at most `count` starts per `per` seconds, cluster-wide
    api: bool = False  # an operator's tool: its jobs get the API's URL and ROBOTNI_JOB_API_TOKEN
    data_folder: str | None = None  # a folder of the data folder its jobs may write (e.g. backups)

    @property
    def has_own_environment(self) -> bool:
        return self.env.is_own

    def validate(self, params: Any) -> dict[str, Any]:
        """Return a copy of params with defaults filled in, or raise InvalidParams naming each bad field."""
        return schemas.validate(self.params_schema, params)


def read_block(text: str) -> dict[str, Any] | None:
    """The `script` PEP 723 block as a dict, or None when there is none."""
    blocks = [m for m in BLOCK_RE.finditer(text) if m.group("type") == "script"]
    if not blocks:
        return None
    if len(blocks) > 1:
        raise DeclarationError("more than one '# /// script' block")
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:] for line in blocks[0].group("content").splitlines(keepends=True)
    )
    try:
        return tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError(f"the '# /// script' block is not valid TOML: {exc}") from exc


def _number(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise DeclarationError(f"{key} must be a positive number, not {value!r}")
    return float(value)


def _retry_policy(table: Any) -> RetryPolicy:
    if not isinstance(table, dict):
        raise DeclarationError("retry must be a table")
    unknown = set(table) - RETRY_KEYS
    if unknown:
        raise DeclarationError(f"unknown retry keys: {', '.join(sorted(unknown))}")
    max_retries = table.get("max_retries", 0)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise DeclarationError(f"retry.max_retries must be a whole number >= 0, not {max_retries!r}")
    on_timeout = table.get("on_timeout", False)
    if not isinstance(on_timeout, bool):
        raise DeclarationError("retry.on_timeout must be true or false")
    return RetryPolicy(
        max_retries=max_retries,
        backoff=_number(table, "backoff", RetryPolicy.backoff),
        backoff_max=_number(table, "backoff_max", RetryPolicy.backoff_max),
        on_timeout=on_timeout,
    )


def _limits(table: Any) -> Limits:
    """`[tool.robotni.limits]` over the configured defaults (ROBOTNI_JOB_MEMORY_MB, ...)."""
    if not isinstance(table, dict):
        raise DeclarationError("limits must be a table")
    try:
        return settings().job_limits.overridden(table)
    except ConfigError as exc:
        raise DeclarationError(str(exc)) from None


def _isolation(meta: Mapping[str, Any]) -> tuple[Isolation, tuple[str, ...]]:
    """`isolation = "process" | "fork"` and, for fork, `preload = ["module", ...]`."""
    value = meta.get("isolation", Isolation.PROCESS.value)
    if value not in {i.value for i in Isolation}:
        raise DeclarationError(f"isolation must be 'process' or 'fork', not {value!r}")
    preload = meta.get("preload", [])
    if not isinstance(preload, list) or not all(isinstance(m, str) and MODULE_RE.match(m) for m in preload):
        raise DeclarationError("preload must be a list of module names, such as ['json', 'numpy.linalg']")
    if preload and value != Isolation.FORK.value:
        raise DeclarationError("preload needs isolation = 'fork' (only a fork server imports modules ahead)")
    return Isolation(value), tuple(preload)


def _operator_grants(meta: Mapping[str, Any]) -> tuple[bool, str | None]:
    """`api = true` and `data_folder = "name"`: what an operator's tool (backups, reports) is given."""
    api = meta.get("api", False)
    if not isinstance(api, bool):
        raise DeclarationError("api must be true or false")
    folder = meta.get("data_folder")
    if folder is not None and (not isinstance(folder, str) or not NAME_RE.match(folder) or folder in ROBOTNI_FOLDERS):
        raise DeclarationError(
            f"data_folder must be a plain name matching {NAME_RE.pattern} and none of Robotni's own folders "
            f"({', '.join(sorted(ROBOTNI_FOLDERS))}), not {folder!r}"
        )
    return api, folder


def parse_type(path: Path) -> WorkerType:
    """Read one worker script's declaration; DeclarationError says what is wrong."""
    name = path.stem
    if not NAME_RE.match(name):
        raise DeclarationError(f"the file name must be a type name matching {NAME_RE.pattern}")
    block = read_block(path.read_text(encoding="utf-8"))
    if block is None:
        raise DeclarationError("no '# /// script' metadata block (PEP 723)")
    meta = block.get("tool", {}).get("robotni")
    if not isinstance(meta, dict):
        raise DeclarationError("the metadata block has no [tool.robotni] table")
    unknown = set(meta) - KNOWN_KEYS
    if unknown:
        raise DeclarationError(f"unknown [tool.robotni] keys: {', '.join(sorted(unknown))}")
    queue = meta.get("queue", DEFAULT_QUEUE)
    if not isinstance(queue, str) or not NAME_RE.match(queue):
        raise DeclarationError(f"queue must match {NAME_RE.pattern}, not {queue!r}")
    soft = _number(meta, "soft_time_limit", DEFAULT_SOFT_LIMIT)
    hard = _number(meta, "hard_time_limit", soft + DEFAULT_HARD_MARGIN)
    if hard < soft:
        raise DeclarationError("hard_time_limit must not be below soft_time_limit")
    description = meta.get("description", "")
    if not isinstance(description, str):
        raise DeclarationError("description must be a string")
    dependencies = environments.parse_dependencies(block.get("dependencies"))
    isolation, preload = _isolation(meta)
    params_schema = schemas.checked(meta.get("params", {}))
    api, data_folder = _operator_grants(meta)
    return WorkerType(
        name=name,
        script=path.resolve(),
        description=description,
        queue=queue,
        soft_time_limit=soft,
        hard_time_limit=hard,
        params_schema=params_schema,
        retry=_retry_policy(meta.get("retry", {})),
        limits=_limits(meta.get("limits", {})),
        env=EnvSpec(
            dependencies=dependencies,
            requires_python=environments.parse_requires_python(block.get("requires-python")),
            venv=environments.parse_venv(meta.get("venv"), dependencies),
        ),
        isolation=isolation,
        preload=preload,
        priority=scheduling.priority(meta.get("priority", Priority.NORMAL.value)),
        concurrency=scheduling.concurrency(meta.get("concurrency"), params_schema),
        rate=scheduling.rate(meta.get("rate")),
        api=api,
        data_folder=data_folder,
    )


class Registry(Mapping[str, WorkerType]):
    def __init__(self, types: Mapping[str, WorkerType]):
        self._types = dict(types)

    def __getitem__(self, name: str) -> WorkerType:
        try:
            return self._types[name]
        except KeyError:
            known = ", ".join(sorted(self._types))
            raise UnknownType(f"unknown worker type {name!r}; known: {known}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    @property
    def queues(self) -> list[str]:
        return sorted({DEFAULT_QUEUE, *(t.queue for t in self._types.values())})


def load_registry(workers_dir: Path) -> Registry:
    """Every `*.py` in workers_dir; the first bad declaration stops start-up with its file and reason."""
    if not workers_dir.is_dir():
        raise DeclarationError(f"{workers_dir}: the workers folder does not exist (ROBOTNI_WORKERS_DIR)")
    types = {
        PYTHON_SCRIPT: WorkerType(
            PYTHON_SCRIPT,
            None,
            "Runs a script from ROBOTNI_SCRIPTS_DIR with args",
            params_schema=PYTHON_SCRIPT_PARAMS,
            limits=settings().job_limits,
        )
    }
    for path in sorted(workers_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        if path.stem == PYTHON_SCRIPT:
            raise DeclarationError(f"{path}: {PYTHON_SCRIPT!r} is the built-in generic type; rename the file")
        try:
            types[path.stem] = parse_type(path)
        except DeclarationError as exc:
            raise DeclarationError(f"{path}: {exc}") from None
    return Registry(types)


@cache
def registry() -> Registry:
    return load_registry(settings().workers_dir)


def reset_registry() -> None:
    """Forget this process's registry: the next `registry()` reads the workers folder again (tests, tools)."""
    registry.cache_clear()
