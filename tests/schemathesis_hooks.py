"""Schemathesis hooks for tests/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import schemathesis

# Gunicorn refuses these before Robotni sees the request (a request line over 4094 bytes, bad HTTP), in HTML.
SERVER_REFUSALS = {400, 414, 431}


def server_refusal(response) -> bool:
    """Whether gunicorn answered itself (an HTML 400, 414 or 431), so Robotni's API never saw the request."""
    content_type = next((v[0] for k, v in response.headers.items() if k.lower() == "content-type" and v), "")
    return response.status_code in SERVER_REFUSALS and content_type.startswith("text/html")


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep every failure but the web server's own refusals of oversized or malformed requests."""
    return not server_refusal(response)
