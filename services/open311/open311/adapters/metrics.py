"""Prometheus metrics of the Open311 facade (prefix smartcity_open311_)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "smartcity_open311_http_requests_total",
    "HTTP requests answered, by route, method and status",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "smartcity_open311_http_request_duration_seconds",
    "Time to answer an HTTP request, by route and method",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
GATEWAY_CALLS = Histogram(
    "smartcity_open311_gateway_call_duration_seconds",
    "Calls to the gateway's gRPC API, by RPC and status code",
    ["rpc", "code"],
    buckets=LATENCY_BUCKETS,
)
SUBMITS = Counter(
    "smartcity_open311_submits_total",
    "POST /requests that reached the gateway, by outcome (created, deduplicated, token)",
    ["outcome"],
)
RATE_LIMITED = Counter("smartcity_open311_rate_limited_total", "Requests refused by the rate limit", ["kind"])
READY = Gauge("smartcity_open311_ready", "1 while the gateway answers its health check SERVING")


def initialise() -> None:
    """Zero series, so dashboards and alerts see them before the first event."""
    for outcome in ("created", "deduplicated", "token"):
        SUBMITS.labels(outcome)
    for kind in ("address", "api_key"):
        RATE_LIMITED.labels(kind)
    READY.set(0)
