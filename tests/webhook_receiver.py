"""A real HTTP receiver for webhook tests: records every POST, answers with a chosen code, can hold a request."""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.stack import free_port


class Receiver:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.calls: list[tuple[float, dict[str, str], bytes]] = []
        self.answer = 200
        self.hold = threading.Event()  # while cleared, nothing is held; set `holding` to hold requests
        self.holding = False
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.calls.append((time.time(), dict(self.headers), body))
                if receiver.holding:
                    receiver.hold.wait(60)
                with contextlib.suppress(OSError):  # a sender killed while we held its request
                    self.send_response(receiver.answer)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.hold.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def ids(self) -> list[str]:
        return [headers["webhook-id"] for _, headers, _ in self.calls]
