"""How a type's jobs are taken: `priority`, `concurrency = { limit, key }` and `rate`, as its block declares them.

The claim in the store (robotni/store/claims.py) applies them; here they are only read and checked, loudly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from robotni.errors import DeclarationError
from robotni.status import Priority

# `key = "project"`: one count per project; `key = "params.<field>"`: one per value of that field.
PROJECT_KEY = "project"
PARAMS_PREFIX = "params."
# A constant key names a cap shared by every type that declares it: it ends up in logs and metric labels.
CONSTANT_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RATE_RE = re.compile(r"^\s*(?P<count>[0-9]+)\s*/\s*(?P<unit>s|m|h)\s*$")
RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
CONCURRENCY_KEYS = {"limit", "key"}


@dataclass(frozen=True)
class Concurrency:
    """At most `limit` jobs of one key run at once, across every worker and host."""

    limit: int
    key: str  # "project", "params.<field>", or a constant shared by every type that names it

    def key_of(self, type_name: str, project: str, params: Mapping[str, Any]) -> str:
        """The job's key: per type for a project or params key, the constant itself for a global cap."""
        if self.key == PROJECT_KEY:
            return f"{type_name}:project={project}"
        if self.key.startswith(PARAMS_PREFIX):
            field = self.key.removeprefix(PARAMS_PREFIX)
            return f"{type_name}:{field}={json.dumps(params[field], sort_keys=True)}"[:255]
        return self.key


@dataclass(frozen=True)
class Rate:
    """At most `count` jobs of the type start in any `per` seconds, across every worker and host."""

    count: int
    per: float
    text: str  # as declared: "30/m"


def priority(value: Any) -> Priority:
    try:
        return Priority(value)
    except ValueError:
        names = ", ".join(p.value for p in Priority)
        raise DeclarationError(f"priority must be one of {names}, not {value!r}") from None


def _filled(schema: Mapping[str, Any], field: str) -> bool:
    """Every valid params object has this field: required, or given a default."""
    prop = schema.get("properties", {}).get(field)
    return field in schema.get("required", []) or (isinstance(prop, dict) and "default" in prop)


def concurrency(table: Any, params_schema: Mapping[str, Any]) -> Concurrency | None:
    """`concurrency = { limit = 2, key = "project" }`; None when the type declares none."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise DeclarationError("concurrency must be a table: { limit = 2, key = 'project' }")
    unknown = set(table) - CONCURRENCY_KEYS
    if unknown:
        raise DeclarationError(f"unknown concurrency keys: {', '.join(sorted(unknown))}")
    limit, key = table.get("limit"), table.get("key", PROJECT_KEY)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise DeclarationError(f"concurrency.limit must be a whole number >= 1, not {limit!r}")
    if not isinstance(key, str):
        raise DeclarationError(f"concurrency.key must be a string, not {key!r}")
    if key.startswith(PARAMS_PREFIX):
        field = key.removeprefix(PARAMS_PREFIX)
        if not FIELD_RE.match(field):
            raise DeclarationError(f"concurrency.key {key!r}: name one top-level params field, as 'params.account_id'")
        if not _filled(params_schema, field):
            raise DeclarationError(f"concurrency.key {key!r}: the params schema must require {field!r} or default it")
    elif key != PROJECT_KEY and not CONSTANT_KEY_RE.match(key):
        raise DeclarationError(f"concurrency.key must be 'project', 'params.<field>' or a constant name, not {key!r}")
    return Concurrency(limit=limit, key=key)


def rate(value: Any) -> Rate | None:
    """`rate = "30/m"` (per s, m or h); None when the type declares none."""
    if value is None:
        return None
    found = RATE_RE.match(value) if isinstance(value, str) else None
    if found is None or int(found["count"]) < 1:
        raise DeclarationError(f"rate must look like '30/m' (a count >= 1 per s, m or h), not {value!r}")
    return Rate(count=int(found["count"]), per=RATE_UNITS[found["unit"]], text=value.strip())
