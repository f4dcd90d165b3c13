"""A worker type's params: its JSON Schema, checked once when the type is read, and each submit's params checked
against it, with each property's `default` filled in."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

import jsonschema
from jsonschema.protocols import Validator
from jsonschema.validators import Draft202012Validator, extend

from robotni.errors import DeclarationError, InvalidParams


def _with_defaults(validator_class: type[Validator]) -> type[Validator]:
    """A validator that also fills in each property's `default`, as jsonschema's FAQ shows."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def properties(
        validator: Validator, props: dict[str, Any], instance: Any, schema: dict[str, Any]
    ) -> Iterator[jsonschema.ValidationError]:
        if isinstance(instance, dict):
            for name, subschema in props.items():
                if isinstance(subschema, dict) and "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, props, instance, schema)

    # types-jsonschema leaves extend() unannotated ([tool.mypy] untyped_calls_exclude): it makes a validator class.
    filling: type[Validator] = extend(validator_class, {"properties": properties})
    return filling


FillingValidator = _with_defaults(Draft202012Validator)


def checked(schema: object) -> dict[str, Any]:
    """A declaration's `params` table as the JSON Schema of an object; DeclarationError when it is not one."""
    if not isinstance(schema, dict):
        raise DeclarationError("params must be a table holding a JSON Schema")
    schema = {"type": "object", **schema}
    if schema["type"] != "object":
        raise DeclarationError("params must describe an object (type = 'object')")
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise DeclarationError(f"params is not a valid JSON Schema: {exc.message}") from exc
    return schema


def validate(schema: Mapping[str, Any], params: Any) -> dict[str, Any]:
    """A copy of params with defaults filled in, or InvalidParams naming each bad field."""
    filled: dict[str, Any] = copy.deepcopy(params)  # a dict once valid: every params schema is an object's
    errors = sorted(FillingValidator(schema).iter_errors(filled), key=lambda e: list(e.path))
    if errors:
        raise InvalidParams(_error_map(errors))
    return filled


def _field_name(error: jsonschema.ValidationError) -> str:
    path = [str(p) for p in error.path]
    if error.validator == "required" and isinstance(error.instance, dict) and isinstance(error.validator_value, list):
        path += [n for n in error.validator_value if n not in error.instance][:1]
    return ".".join(path) or "_schema"


def _error_map(errors: list[jsonschema.ValidationError]) -> dict[str, list[str]]:
    """Errors keyed by dotted field path, as marshmallow reports its own."""
    fields: dict[str, list[str]] = {}
    for error in errors:
        fields.setdefault(_field_name(error), []).append(error.message)
    return fields
