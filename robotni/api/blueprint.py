"""The Blueprint every API module uses: flask-smorest's, with a parser that survives hostile JSON."""

from __future__ import annotations

import flask_smorest
from webargs.flaskparser import FlaskParser


class Parser(FlaskParser):
    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except RecursionError as exc:  # "[[[[…" a hundred thousand deep: a bad body, not a server error
            return self._handle_invalid_json_error(exc, req)


# What robotni/api/auth.py may answer before any view runs, documented on every /api operation.
REFUSALS = {
    401: "No valid token (Authorization: Bearer <token>)",
    403: "The token does not cover this; or no tokens are configured and the caller is not on this machine",
    429: "Too many requests for this token (see Retry-After)",
}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()

    def route(self, rule, *, parameters=None, tags=None, **options):
        register = super().route(rule, parameters=parameters, tags=tags, **options)

        def decorator(view):
            if (self.url_prefix or "").startswith("/api/") and isinstance(view, type):
                for name in HTTP_METHODS:
                    method = getattr(view, name, None)
                    documented = getattr(method, "_apidoc", {}).get("response", {}).get("responses", {})
                    for code, description in REFUSALS.items():
                        if method is not None and code not in documented:
                            method = self.alt_response(code, description=description)(method)
                    if method is not None:
                        setattr(view, name, method)
            return register(view)

        return decorator
