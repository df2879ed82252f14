"""Helpers of the Open311 tests and benchmark: test tokens, the facade as a child process.

Test tokens (the gateway's token file holds their SHA-256 hashes, as in production):
  t-app      a citizen app (api_key): requests:read, requests:write, no OPD
  t-read     the facade's own read-only token: requests:read, requests:read:all, no OPD
  t-devices  a key without requests:write
  t-pupr     the roads OPD (PUPR): sees the contact data of its requests
  t-admin    moves requests through the lifecycle
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import ClientSession

from smartcity.testing import ServiceProcess, free_port

TOKENS: dict[str, dict[str, Any]] = {
    "t-app": {
        "client_id": "citizen-app",
        "opd_code": "",
        "scopes": ["requests:read", "requests:write"],
        "actor_kind": "citizen",
    },
    "t-read": {
        "client_id": "open311-public",
        "opd_code": "",
        "scopes": ["requests:read", "requests:read:all"],
        "actor_kind": "system",
        "rate_limit_rps": 1000,
        "rate_limit_burst": 2000,
    },
    "t-devices": {"client_id": "devices-dashboard", "opd_code": "", "scopes": ["devices:read"]},
    "t-pupr": {"client_id": "pupr-app", "opd_code": "PUPR", "scopes": ["requests:read", "requests:write"]},
    "t-admin": {"client_id": "admin", "opd_code": "", "scopes": ["admin"], "actor_kind": "system"},
}


def write_tokens(path: Path) -> Path:
    hashed = {hashlib.sha256(token.encode()).hexdigest(): entry for token, entry in TOKENS.items()}
    path.write_text(yaml.safe_dump({"tokens": hashed}))
    return path


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.HTTPError):
        return False


@dataclass
class Facade:
    proc: ServiceProcess
    url: str
    metrics_port: int

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not await asyncio.to_thread(http_ok, f"{self.url}/readyz"):
            assert self.proc.running, f"open311 exited:\n{self.proc.log_tail()}"
            assert time.monotonic() < deadline, f"open311 not ready:\n{self.proc.log_tail()}"
            await asyncio.sleep(0.2)


FacadeStarter = Callable[..., Facade]


def facade_starter(logs: Path, started: list[ServiceProcess]) -> FacadeStarter:
    def start(gateway_address: str, **env: str) -> Facade:
        port, metrics_port = free_port(), free_port()
        token_file = logs / "open311-token"
        token_file.write_text("t-read\n")
        full_env = (
            os.environ
            | {
                "LOG_FORMAT": "text",
                "PYTHONUNBUFFERED": "1",
                "OPEN311_ADDRESS": f"127.0.0.1:{port}",
                "OPEN311_PUBLIC_URL": f"http://127.0.0.1:{port}",
                "OPEN311_GATEWAY_ADDRESS": gateway_address,
                "OPEN311_GATEWAY_TOKEN_FILE": str(token_file),
                "OPEN311_SHUTDOWN_GRACE_S": "2",
                "METRICS_PORT": str(metrics_port),
            }
            | env
        )
        log = logs / f"open311-{len(started)}-{uuid.uuid4().hex[:6]}.log"
        proc = ServiceProcess([sys.executable, "-m", "open311"], full_env, log).start()
        started.append(proc)
        return Facade(proc, f"http://127.0.0.1:{port}", metrics_port)

    return start


# ---------------- an HTTP client of the facade ----------------


async def get(http: ClientSession, url: str, **params: str) -> tuple[int, Any, dict[str, str]]:
    async with http.get(url, params=params) as reply:
        return reply.status, await _body(reply), dict(reply.headers)


async def post(http: ClientSession, url: str, form: dict[str, str], **headers: str) -> tuple[int, Any]:
    async with http.post(url, data=form, headers=headers) as reply:
        return reply.status, await _body(reply)


async def _body(reply: Any) -> Any:
    raw = await reply.read()
    if reply.content_type == "application/json":
        return json.loads(raw)
    if reply.content_type == "text/xml":
        return ET.fromstring(raw)
    return raw.decode()


def assert_error(status: int, body: Any, expected: int, says: str = "") -> None:
    """The spec's error body, JSON or XML, with the HTTP status as its code."""
    assert status == expected, body
    if isinstance(body, ET.Element):
        assert body.tag == "errors" and body[0].tag == "error", ET.tostring(body)
        code, description = int(body[0].findtext("code") or 0), body[0].findtext("description") or ""
    else:
        assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"code", "description"}, body
        code, description = body[0]["code"], body[0]["description"]
    assert code == expected and says in description, description
