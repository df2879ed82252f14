"""Prometheus metrics of the gateway (prefix smartcity_gateway_)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from smartcity.v1 import requests_pb2

RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RPCS = Counter("smartcity_gateway_rpcs_total", "RPCs served, by method and status code", ["method", "code"])
RPC_LATENCY = Histogram(
    "smartcity_gateway_rpc_duration_seconds",
    "Time to serve an RPC (unary) or lifetime of a stream, by method and code",
    ["method", "code"],
    buckets=RPC_BUCKETS,
)
RATE_LIMITED = Counter("smartcity_gateway_rate_limited_total", "Calls refused by the rate limit", ["client"])
READY = Gauge("smartcity_gateway_ready", "1 once the views caught up with their topics")
VIEW_SIZE = Gauge("smartcity_gateway_view_entities", "Entities held in each in-memory view", ["view"])
RECORDS = Counter(
    "smartcity_gateway_records_total", "Records read into the views, by outcome", ["topic", "outcome"]
)
STORE_REBUILDING = Gauge(
    "smartcity_gateway_store_rebuilding",
    "1 while the history store is rebuilt from the beginning of the topics (not resumed)",
)
STORE_SET_ASIDE = Counter(
    "smartcity_gateway_store_set_aside_total",
    "History stores set aside as unusable (damaged, other schema or topics, ahead of a topic)",
)
CATCHUP_SECONDS = Gauge("smartcity_gateway_catchup_seconds", "Time the views took to catch up at start")
WATCHERS = Gauge("smartcity_gateway_watchers", "Open watch subscribers", ["stream"])
WATCHERS_DROPPED = Counter(
    "smartcity_gateway_watchers_dropped_total", "Watch subscribers dropped for falling behind", ["stream"]
)
COMMANDS = Counter(
    "smartcity_gateway_commands_total", "Commands sent, by action and outcome", ["action", "outcome"]
)
COMMANDS_WAITING = Gauge("smartcity_gateway_commands_waiting", "Commands waiting for their outcome")
CONTACT_READS = Counter(
    "smartcity_gateway_contact_reads_total",
    "Requests whose contact data an answer carried in clear (each on requests.audit.v1), by client and RPC",
    ["client", "method"],
)
CONTACT_ERASURES = Counter(
    "smartcity_gateway_contact_erasures_total",
    "Subjects whose data keys the gateway destroyed, by why (request, retention, rejected, orphan)",
    ["reason"],
)
ERASURE_REASONS = ("request", "retention", "rejected", "orphan")


_ACTIONS = requests_pb2.RequestCommand.DESCRIPTOR.oneofs_by_name["action"]
COMMAND_ACTIONS = tuple(field.name for field in _ACTIONS.fields)
COMMAND_OUTCOMES = ("applied", "deduplicated", "rejected", "timeout")
RECORD_OUTCOMES = ("ok", "tombstone", "undecodable")


# The labelled series of each (method, code) and (action, outcome), found once: `labels()` takes
# a lock and builds its key at every call, per RPC a hundredth of the gateway's CPU. Both label
# sets are bounded (the gateway's methods and status codes, the commands' actions and outcomes).
_RPC_SERIES: dict[tuple[str, str], tuple[Any, Any]] = {}
_COMMAND_SERIES: dict[tuple[str, str], Any] = {}


def count_rpc(method: str, code: str, seconds: float) -> None:
    """One more RPC of this method ended with this code, after `seconds`."""
    series = _RPC_SERIES.get((method, code))
    if series is None:
        series = _RPC_SERIES[(method, code)] = (RPCS.labels(method, code), RPC_LATENCY.labels(method, code))
    series[0].inc()
    series[1].observe(seconds)


def count_command(action: str, outcome: str) -> None:
    """The command bus's `on_outcome`: one more command of this action with this outcome."""
    series = _COMMAND_SERIES.get((action, outcome))
    if series is None:
        series = _COMMAND_SERIES[(action, outcome)] = COMMANDS.labels(action, outcome)
    series.inc()


def count_contact_reads(client: str, method: str, count: int) -> None:
    """The contact gate's `count_reads`."""
    CONTACT_READS.labels(client, method).inc(count)


def initialise(clients: Iterable[str], topics: Iterable[str]) -> None:
    """Creates every known label set at zero, so dashboards show 0 rather than no data and
    increase() sees the first event (Prometheus practice for counters with known labels)."""
    for client in clients:
        RATE_LIMITED.labels(client)
    for reason in ERASURE_REASONS:
        CONTACT_ERASURES.labels(reason)
    for topic in topics:
        for outcome in RECORD_OUTCOMES:
            RECORDS.labels(topic, outcome)
    for action in COMMAND_ACTIONS:
        for outcome in COMMAND_OUTCOMES:
            COMMANDS.labels(action, outcome)
