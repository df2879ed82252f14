"""The control endpoint of a simulator: scenarios inject faults through it.

A simulator runs `ControlServer(port, handler).start()`; `POST /faults` with a JSON body such as
`{"fault": "offline", "target": "cam-alun-alun-2", "duration_s": 120}` calls
`handler(command)`, whose returned dict is the JSON reply. A handler raises ValueError for a
command it does not understand: the reply is 400 with the message. `GET /faults` lists what
the handler reports as active.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

from smartcity.httpserver import Reply, Request, ThreadedHttpServer

Command = dict[str, Any]
Handler = Callable[[Command], dict[str, Any]]
Lister = Callable[[], list[dict[str, Any]]]


class ControlServer(ThreadedHttpServer):
    def __init__(self, host: str, port: int, handler: Handler, lister: Lister | None = None) -> None:
        self._handler = handler
        self._lister = lister or (lambda: [])
        super().__init__(host, port, self._answer, "sim-control")

    def _answer(self, request: Request) -> Reply:
        if request.path != "/faults":
            hint = "POST" if request.method == "POST" else "GET or POST"
            return _json(404, {"error": f"try {hint} /faults"})
        if request.method == "GET":
            return _json(200, {"active": self._lister()})
        try:
            command = json.loads(request.body or b"{}")
            if not isinstance(command, dict):
                raise ValueError("the body must be a JSON object")
            return _json(200, self._handler(command))
        except (ValueError, KeyError) as exc:
            return _json(400, {"error": str(exc)})


def _json(code: int, payload: dict[str, Any]) -> Reply:
    return Reply(code, json.dumps(payload).encode(), "application/json")


def send_fault(port: int, command: Command, host: str = "127.0.0.1",
               timeout_s: float = 5.0) -> dict[str, Any]:
    """Client side: posts a fault command to a simulator's control endpoint."""
    request = urllib.request.Request(f"http://{host}:{port}/faults", data=json.dumps(command).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result
