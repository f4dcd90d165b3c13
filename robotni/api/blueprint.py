"""The Blueprint every API module uses: flask-smorest's, with a parser that survives hostile JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import flask
import flask_smorest
from flask_smorest.error_handler import ErrorSchema
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
        self,
        rule: str,
        *,
        operations: dict[str, str],
        parameters: list[Any] | None = None,
        tags: list[str] | None = None,
        **options: Any,
    ) -> Callable[[View], View]:
        """flask-smorest's route, with an operationId per method (`operations`: {"get": "getJob"}) for generated
        clients, the refusals every /api operation may answer, and the error schema on every error response."""
        register = super().route(rule, parameters=parameters, tags=tags, **options)

        def decorator(view: View) -> View:
            for name in HTTP_METHODS:
                method = getattr(view, name, None)
                if method is None:
                    continue
                documented = getattr(method, "_apidoc", {}).get("response", {}).get("responses", {})
                if (self.url_prefix or "").startswith("/api/"):
                    for code, description in REFUSALS.items():
                        if code not in documented:
                            method = self.alt_response(code, description=description)(method)
                for code, answers in method._apidoc["response"]["responses"].items():
                    for answer in answers if str(code).isdigit() and int(code) >= 400 else []:
                        if isinstance(answer, dict):
                            answer.setdefault("schema", ErrorSchema)
                setattr(view, name, self.doc(operationId=operations[name])(method))
            registered: View = register(view)  # the view itself
            return registered

        return decorator
