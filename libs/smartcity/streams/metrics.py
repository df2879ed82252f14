"""The metrics every stream service exports, and the two helpers that set them per event or
per interval (latency from event time, consumer lag)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import faust
from prometheus_client import Counter, Gauge

from smartcity.observability import latency_histogram

EVENTS_CONSUMED = Counter(
    "smartcity_events_consumed_total",
    "Messages consumed by a stream processor, by outcome (ok or dead_letter)",
    ["service", "topic", "outcome"],
)
PROCESSING_LATENCY = latency_histogram(
    "smartcity_processing_latency_seconds",
    "Seconds from an event's own time to the end of its processing",
    ("service", "topic"),
)
CONSUMER_LAG = Gauge(
    "smartcity_consumer_lag_messages",
    "Messages between the last committed offset and the partition's high-water mark",
    ["service", "topic", "partition"],
)
AGENT_CRASHES = Counter(
    "smartcity_agent_crashes_total",
    "Crashes of a stream agent (Faust restarts it): always a bug or a broken topic layout",
    ["service", "agent"],
)


def observe_latency(service: str, topic: str, event_time_s: float) -> None:
    """Records event-time-to-now latency (skipped for events from the far past: replays)."""
    delay = time.time() - event_time_s
    if 0 <= delay < 3600:
        PROCESSING_LATENCY.labels(service, topic).observe(delay)


def sample_consumer_lag(app: faust.App, service: str) -> None:
    """Sets the lag gauge from the consumer's view (best effort: uses Faust's consumer state)."""
    consumer = app.consumer
    committed: Mapping[Any, int] = getattr(consumer, "_committed_offset", {}) or {}
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        if highwater is None:
            continue
        done = committed.get(tp)
        lag = highwater - (done + 1 if done is not None else 0)
        CONSUMER_LAG.labels(service, tp.topic, str(tp.partition)).set(max(lag, 0))
