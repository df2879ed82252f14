"""The control endpoint of a simulator: scenarios inject faults through it.

A simulator runs `ControlServer(port, handler).start()`; `POST /faults` with a JSON body such as
`{"fault": "offline", "target": "cam-alun-alun-2", "duration_s": 120}` calls
`handler(command)`, whose returned dict is the JSON reply. A handler raises ValueError for a
command it does not understand: the reply is 400 with the message. `GET /faults` lists what
the handler reports as active.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Command = dict[str, Any]
Handler = Callable[[Command], dict[str, Any]]
Lister = Callable[[], list[dict[str, Any]]]


class ControlServer:
    def __init__(self, host: str, port: int, handler: Handler, lister: Lister | None = None) -> None:
        self._handler = handler
        self._lister = lister or (lambda: [])
        self._server = ThreadingHTTPServer((host, port), self._request_handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sim-control",
                                        daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> ControlServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class RequestHandler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/faults":
                    self._reply(404, {"error": "try GET or POST /faults"})
                    return
                self._reply(200, {"active": outer._lister()})

            def do_POST(self) -> None:
                if self.path != "/faults":
                    self._reply(404, {"error": "try POST /faults"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    command = json.loads(self.rfile.read(length) or b"{}")
                    if not isinstance(command, dict):
                        raise ValueError("the body must be a JSON object")
                    self._reply(200, outer._handler(command))
                except (ValueError, KeyError) as exc:
                    self._reply(400, {"error": str(exc)})

            def _reply(self, code: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return RequestHandler


def send_fault(port: int, command: Command, host: str = "127.0.0.1",
               timeout_s: float = 5.0) -> dict[str, Any]:
    """Client side: posts a fault command to a simulator's control endpoint."""
    request = urllib.request.Request(f"http://{host}:{port}/faults", data=json.dumps(command).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result
