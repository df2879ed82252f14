"""The small threaded HTTP server behind the /metrics-and-probes endpoint and the simulators'
control endpoint: one route function answers every request.

Threaded on purpose: a request is answered while the process's event loop is busy. Requests
are not logged (scrapes every 15 s would drown the process's own logs).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class Request:
    method: str  # "GET" or "POST"
    path: str  # without the query string
    body: bytes
    query: str = ""  # the query string (after "?"), "" when none


@dataclass(frozen=True)
class Reply:
    code: int
    body: bytes
    content_type: str = "text/plain"


Route = Callable[[Request], Reply]


class ThreadedHttpServer:
    """Serves `route` on host:port in a daemon thread; port 0 picks a free one."""

    def __init__(self, host: str, port: int, route: Route, name: str) -> None:
        self._route = route
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        route = self._route

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer("GET", b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer("POST", self.rfile.read(length))

            def _answer(self, method: str, body: bytes) -> None:
                path, _, query = self.path.partition("?")
                reply = route(Request(method, path, body, query))
                self.send_response(reply.code)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
