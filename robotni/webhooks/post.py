"""One POST to a checked target's address (not its name again), with the name in the Host header and, for https,
as TLS SNI and the name the certificate must carry. No redirect is followed: http.client follows none."""

from __future__ import annotations

import http.client
import socket
import ssl

from robotni.webhooks.addresses import Target

# What the delivery log keeps of an answer.
BODY_KEPT = 1024


def _connect(target: Target, timeout: float) -> socket.socket:
    error: OSError | None = None
    for address in target.addresses:
        try:
            return socket.create_connection((address, target.port), timeout)
        except OSError as exc:
            error = exc
    raise error or OSError(f"{target.host}: no address")


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.target, self.seconds = target, timeout

    def connect(self) -> None:
        self.sock = _connect(self.target, self.seconds)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        self.tls = ssl.create_default_context()  # verifies the certificate against target.host
        super().__init__(target.host, target.port, timeout=timeout, context=self.tls)
        self.target, self.seconds = target, timeout

    def connect(self) -> None:
        self.sock = self.tls.wrap_socket(_connect(self.target, self.seconds), server_hostname=self.target.host)


def send(target: Target, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int, bytes]:
    """(status code, first KiB of the answer); OSError or http.client.HTTPException when there is no answer."""
    connection = (_PinnedHTTPS if target.scheme == "https" else _PinnedHTTP)(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(BODY_KEPT)
    finally:
        connection.close()
