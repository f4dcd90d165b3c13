"""The Blueprint every API module uses: flask-smorest's, with a parser that survives hostile JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import flask
import flask_smorest
from webargs.flaskparser import FlaskParser

View = TypeVar("View")

# flask-smorest ships no types; its abort() always raises (an HTTPException with the JSON error body).
abort: Callable[..., NoReturn] = flask_smorest.abort


class Parser(FlaskParser):
    def _raw_load_json(self, req: flask.Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError as exc:  # "[[[[…" a hundred thousand deep: a bad body, not a server error
            # webargs types the error as a JSON or Unicode one; it only hands it on to abort().
            return self._handle_invalid_json_error(exc, req)  # type: ignore[arg-type]


# What robotni/api/auth.py may answer before any view runs, documented on every /api operation.
REFUSALS = {
    401: "No valid token (Authorization: Bearer <token>)",
    403: "The token does not cover this; or no tokens are configured and the caller is not on this machine",
    429: "Too many requests for this token (see Retry-After)",
}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]  # flask-smorest ships no types
    ARGUMENTS_PARSER = Parser()

    def route(
        self, rule: str, *, parameters: list[Any] | None = None, tags: list[str] | None = None, **options: Any
    ) -> Callable[[View], View]:
        register = super().route(rule, parameters=parameters, tags=tags, **options)

        def decorator(view: View) -> View:
            if (self.url_prefix or "").startswith("/api/") and isinstance(view, type):
                for name in HTTP_METHODS:
                    method = getattr(view, name, None)
                    documented = getattr(method, "_apidoc", {}).get("response", {}).get("responses", {})
                    for code, description in REFUSALS.items():
                        if method is not None and code not in documented:
                            method = self.alt_response(code, description=description)(method)
                    if method is not None:
                        setattr(view, name, method)
            registered: View = register(view)  # the view itself
            return registered

        return decorator
