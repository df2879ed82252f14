"""Structured logging and the /metrics, /healthz, /readyz endpoint every process exposes."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Histogram, generate_latest

from smartcity.httpserver import Reply, Request, ThreadedHttpServer
from smartcity.settings import PlatformSettings

# Seconds from an event's time to the moment its effect left the processor.
PROCESSING_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def latency_histogram(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Histogram:
    return Histogram(name, documentation, list(labels), buckets=PROCESSING_LATENCY_BUCKETS)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the active trace id when there is one.

    `ts` is UTC (ISO 8601 with `Z`) whatever TZ the process runs under: the Formatter's default
    converter (formatTime) is localtime, which labelled Jakarta's local time as UTC."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        utc = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        payload: dict[str, Any] = {
            "ts": f"{utc}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        trace_id = _current_trace_id()
        if trace_id:
            payload["trace_id"] = trace_id
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            payload.update(extra)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def _current_trace_id() -> str:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else ""


def configure_logging(settings: PlatformSettings) -> None:
    """Logs to stderr, JSON by default; `logger.info("msg", extra={"fields": {...}})` adds keys."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter(settings.service_name))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # aiokafka and faust are chatty at INFO about every rebalance step.
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


HealthCheck = Callable[[], bool]


class ObservabilityServer(ThreadedHttpServer):
    """Serves /metrics (Prometheus), /healthz (liveness) and /readyz (readiness) in a thread.

    Threaded on purpose: a probe still answers while the event loop is busy, and a blocked
    loop shows up as a failing liveness check only when `live` says so.
    """

    def __init__(self, host: str, port: int, live: HealthCheck | None = None,
                 ready: HealthCheck | None = None) -> None:
        self._live = live or (lambda: True)
        self._ready = ready or (lambda: True)
        super().__init__(host, port, self._answer, "observability")

    def _answer(self, request: Request) -> Reply:
        if request.method != "GET":
            return Reply(405, b"GET only\n")
        if request.path == "/metrics":
            return Reply(200, generate_latest(_registry_for(request.query)), CONTENT_TYPE_LATEST)
        if request.path == "/healthz":
            return _probe(self._live)
        if request.path == "/readyz":
            return _probe(self._ready)
        return Reply(404, b"not found: try /metrics, /healthz or /readyz\n")


def _registry_for(query: str) -> Any:
    """The whole registry, or only the metrics named by `name[]=...` in the query (Prometheus'
    own filter, as prometheus_client's server reads it): a poller that wants one counter then
    costs the process one counter's exposition, not every series'."""
    names = parse_qs(query).get("name[]")
    return REGISTRY.restricted_registry(names) if names else REGISTRY


def _probe(check: HealthCheck) -> Reply:
    try:
        ok = check()
    except Exception:  # a failing check is an unhealthy answer, not a crash
        ok = False
    return Reply(200 if ok else 503, b"ok\n" if ok else b"unavailable\n")


def start_observability(settings: PlatformSettings, live: HealthCheck | None = None,
                        ready: HealthCheck | None = None) -> ObservabilityServer | None:
    """Starts the endpoint on METRICS_PORT; returns None when the port is 0 (disabled)."""
    if settings.metrics_port <= 0:
        return None
    server = ObservabilityServer(settings.metrics_host, settings.metrics_port, live, ready).start()
    logging.getLogger(__name__).info(
        "metrics on http://%s:%d/metrics", settings.metrics_host, server.port
    )
    return server
