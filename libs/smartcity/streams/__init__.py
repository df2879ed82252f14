"""Faust wiring shared by the stream services.

    transport        the smartcity:// transport: idempotent producer, rewinding consumer
    app              create_app, catalogue and internal topics (raw bytes)
    dead_letters     decode-or-dead-letter (`decoded`, `decode_or_dead_letter`, per batch)
    batches          events in batches, batch messages, TableWriter (per key per batch)
    metrics          consumed / latency / lag / agent-crash metrics
    readiness        assigned_and_recovered, AgentCrashes
    internal_topics  what the app owns, to create before the worker starts
    worker           run_worker, serve
    service          StreamService: the skeleton every stream service fills in

The names below stay importable from `smartcity.streams` itself.
"""

from smartcity.streams.app import (
    bytes_topic,
    create_app,
    faust_credentials,
    internal_topic,
    raw_topic,
    topics_of,
)
from smartcity.streams.dead_letters import (
    Decoded,
    decode_or_dead_letter,
    decoded,
    faust_dead_letter_publisher,
    source_record,
)
from smartcity.streams.internal_topics import internal_topics_of
from smartcity.streams.metrics import (
    AGENT_CRASHES,
    CONSUMER_LAG,
    EVENTS_CONSUMED,
    PROCESSING_LATENCY,
    observe_latency,
    sample_consumer_lag,
)
from smartcity.streams.readiness import AgentCrashes, assigned_and_recovered
from smartcity.streams.sending import send_record
from smartcity.streams.service import StreamService
from smartcity.streams.transport import IdempotentTransport, RewindingConsumer
from smartcity.streams.worker import run_worker, serve

__all__ = [
    "AGENT_CRASHES", "CONSUMER_LAG", "EVENTS_CONSUMED", "PROCESSING_LATENCY", "AgentCrashes",
    "Decoded", "IdempotentTransport", "RewindingConsumer", "StreamService",
    "assigned_and_recovered", "bytes_topic", "create_app", "decode_or_dead_letter", "decoded",
    "faust_credentials", "faust_dead_letter_publisher", "internal_topic", "internal_topics_of",
    "observe_latency", "raw_topic", "run_worker", "sample_consumer_lag", "send_record", "serve",
    "source_record", "topics_of",
]
