"""Jaeger on loopback: the trace backend of the trace tests and of `SMARTCITY_TRACING=jaeger make up`.

    uv run python -m deploy.monitoring.jaeger_local     # runs it in the foreground (exec)

The binary is the one scripts/install_jaeger.sh builds (.cache/ops/jaeger-<version>/jaeger),
run with deploy/monitoring/jaeger-local.yaml: OTLP/HTTP in, traces in memory, the HTTP query
API (/api/traces) and UI out. Ports come from JAEGER_OTLP_HTTP_PORT (default 4318),
JAEGER_QUERY_PORT (16686), JAEGER_QUERY_GRPC_PORT (16685) and JAEGER_HEALTH_PORT (13133).
`JaegerQuery` reads traces back over the query API.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("jaeger-local.yaml")
JAEGER_VERSION = os.environ.get("JAEGER_VERSION", "v1.76.0")
OPS_CACHE = Path(os.environ.get("OPS_CACHE", REPO / ".cache" / "ops"))
DEFAULT_PORTS = {"JAEGER_OTLP_HTTP_PORT": 4318, "JAEGER_QUERY_PORT": 16686,
                 "JAEGER_QUERY_GRPC_PORT": 16685, "JAEGER_HEALTH_PORT": 13133}
INSTALL_HINT = "build it with `bash scripts/install_jaeger.sh` (or `make ops-tools`)"


def binary() -> Path:
    """The cached Jaeger binary; FileNotFoundError naming the install command when absent."""
    path = OPS_CACHE / f"jaeger-{JAEGER_VERSION}" / "jaeger"
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"Jaeger {JAEGER_VERSION} is not built ({path}): {INSTALL_HINT}")
    return path


def argv() -> list[str]:
    return [str(binary()), "--config", str(CONFIG)]


def port(name: str, env: dict[str, str] | None = None) -> int:
    source = os.environ if env is None else env
    return int(source.get(name, DEFAULT_PORTS[name]))


def otlp_endpoint(env: dict[str, str] | None = None) -> str:
    """The OTEL_EXPORTER_OTLP_ENDPOINT services export to (they add /v1/traces)."""
    return f"http://127.0.0.1:{port('JAEGER_OTLP_HTTP_PORT', env)}"


Trace = dict[str, Any]


@dataclass(frozen=True)
class JaegerQuery:
    """Jaeger's HTTP query API (the one its UI uses): services, traces, spans with their tags."""

    base_url: str

    def _get(self, path: str, **params: Any) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.base_url}{path}{query}", timeout=10) as response:
            return json.loads(response.read())

    def ready(self) -> bool:
        try:
            self._get("/api/services")
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return True

    def services(self) -> list[str]:
        return list(self._get("/api/services").get("data") or [])

    def traces(self, service: str, operation: str | None = None, limit: int = 50,
               lookback_s: int = 3600) -> list[Trace]:
        params: dict[str, Any] = {"service": service, "limit": limit, "lookback": f"{lookback_s}s"}
        if operation:
            params["operation"] = operation
        return list(self._get("/api/traces", **params).get("data") or [])

    def trace(self, trace_id: str) -> Trace:
        data = self._get(f"/api/traces/{trace_id}").get("data") or []
        return data[0] if data else {}


def main() -> None:
    env = {name: str(port(name)) for name in DEFAULT_PORTS} | dict(os.environ)
    sys.stdout.flush()
    os.execve(argv()[0], argv(), env)


if __name__ == "__main__":
    try:
        main()
    except FileNotFoundError as missing:
        raise SystemExit(str(missing)) from None
