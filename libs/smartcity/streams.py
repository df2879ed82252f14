"""Faust wiring shared by the stream services: the app, raw-bytes topics, decode-or-dead-letter.

Services declare their topics with `raw_topic(app, name)` and iterate
`decoded(stream, codec, ...)`, which yields decoded messages and routes undecodable ones to
the dead-letter topic without stopping the agent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import faust
from faust.auth import Credentials, SASLCredentials, SSLCredentials
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers.aiokafka import Producer as _FaustProducer
from faust.transport.drivers.aiokafka import Transport as _FaustTransport
from google.protobuf.message import Message
from mode.utils.times import want_seconds
from opentelemetry.context import Context
from prometheus_client import Counter, Gauge

from smartcity.codec import DecodeError, ProtoCodec
from smartcity.dlq import DeadLetter, DeadLetterPublisher, SourceRecord
from smartcity.kafka import client_security, wait_for_broker
from smartcity.observability import latency_histogram
from smartcity.settings import PlatformSettings
from smartcity.topics import InternalTopic, ensure_internal_topics, load_catalogue
from smartcity.tracing import extract_context

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

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


class _IdempotentProducer(_FaustProducer):  # type: ignore[misc]
    """Faust only turns on idempotence inside transactions; the platform wants it always."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class IdempotentTransport(_FaustTransport):  # type: ignore[misc]
    Producer = _IdempotentProducer


TRANSPORTS.aliases["smartcity"] = "smartcity.streams:IdempotentTransport"


def faust_credentials(settings: PlatformSettings) -> Credentials | None:
    """Faust's `broker_credentials` for the settings, built from smartcity.kafka.client_security
    (the same SSL context and SASL arguments every other client gets). None for PLAINTEXT."""
    security = client_security(settings)
    protocol = security.get("security_protocol", "PLAINTEXT")
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return SSLCredentials(security["ssl_context"])
    # SASL_SSL when an ssl_context is given, SASL_PLAINTEXT otherwise (SASLCredentials).
    return SASLCredentials(username=security["sasl_plain_username"],
                           password=security["sasl_plain_password"],
                           mechanism=security["sasl_mechanism"],
                           ssl_context=security.get("ssl_context"))


def create_app(settings: PlatformSettings, **overrides: Any) -> faust.App:
    """A Faust app named after the service (isolated by the topic prefix), raw bytes on the wire,
    connecting with the settings' Kafka security (TLS, SASL) like every other client."""
    brokers = ";".join(f"smartcity://{b.strip()}" for b in settings.kafka_bootstrap.split(","))
    config: dict[str, Any] = {
        "broker": brokers,
        "broker_credentials": faust_credentials(settings),
        "store": "memory://",
        "key_serializer": "raw",
        "value_serializer": "raw",
        "producer_acks": -1,
        "web_enabled": False,
        "topic_disable_leader": True,
        "broker_commit_interval": 1.0,
        "consumer_auto_offset_reset": "earliest",
        "table_cleanup_interval": 30.0,
        # Changelogs are the tables' only durable copy: as many replicas as the cluster wants.
        "topic_replication_factor": settings.topic_replication_factor,
    }
    return faust.App(settings.group_id, **(config | overrides))


def raw_topic(app: faust.App, name: str, prefix: str = "") -> faust.TopicT:
    """A catalogue topic (bytes in, bytes out) with its catalogue partition count."""
    spec = load_catalogue()[name]
    return app.topic(
        spec.full_name(prefix),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
    )


def bytes_topic(app: faust.App, full_name: str) -> faust.TopicT:
    """A topic by full name for raw bytes (dead-letter topics)."""
    return app.topic(full_name, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw")


def faust_dead_letter_publisher(app: faust.App, service: str) -> DeadLetterPublisher:
    """Publishes dead letters through the app's producer and waits for the broker's ack."""

    async def send(letter: DeadLetter) -> None:
        fut = await bytes_topic(app, letter.topic).send(key=letter.key, value=letter.value,
                                                       headers=letter.headers)
        await fut

    return DeadLetterPublisher(service, send)


@dataclass(frozen=True)
class Decoded(Generic[M]):
    """A decoded message with where it came from and the trace context it carried."""

    key: str
    value: M
    record: SourceRecord
    trace_context: Context


def _headers_of(message: Any) -> list[tuple[str, bytes]]:
    headers = getattr(message, "headers", None) or []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k), bytes(v) if v is not None else b"") for k, v in items]


async def decoded(stream: faust.StreamT, codec: ProtoCodec[M], publisher: DeadLetterPublisher,
                  service: str) -> AsyncIterator[Decoded[M]]:
    """Yields each message decoded; sends what cannot be decoded to the DLQ and carries on."""
    async for event in stream.events():
        message = event.message
        record = SourceRecord(topic=message.topic, partition=message.partition,
                              offset=message.offset, key=event.key, value=event.value,
                              headers=_headers_of(message))
        try:
            value = codec.decode(event.value)
            key = event.key.decode("utf-8") if event.key else ""
        except (DecodeError, UnicodeDecodeError) as exc:
            log.warning("dead letter from %s[%d]@%d: %s", record.topic, record.partition,
                        record.offset, exc)
            await publisher.publish(record, str(exc))
            EVENTS_CONSUMED.labels(service, record.topic, "dead_letter").inc()
            continue
        EVENTS_CONSUMED.labels(service, record.topic, "ok").inc()
        yield Decoded(key=key, value=value, record=record,
                      trace_context=extract_context(record.headers))


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


def topics_of(names: Sequence[str], prefix: str) -> list[str]:
    catalogue = load_catalogue()
    return [catalogue[n].full_name(prefix) for n in names]


def run_worker(app: faust.App, settings: PlatformSettings,
               extra_internal_topics: Iterable[faust.TopicT] = ()) -> None:
    """Creates the app's internal topics, then runs it as a Faust worker until SIGTERM/SIGINT.

    Not through Faust's CLI: it would force its web server on (port 6066) and its own logging;
    the platform serves /metrics itself and logs JSON (see smartcity.observability).
    """
    from faust.worker import Worker

    # Faust runs the worker on the thread's current event loop: prepare the topics on that same
    # loop (asyncio.run would close it and leave the worker without one).
    loop = asyncio.get_event_loop_policy().get_event_loop()
    # Refused credentials stop the worker here with a clear error instead of a retry loop.
    loop.run_until_complete(wait_for_broker(settings))
    created = loop.run_until_complete(
        ensure_internal_topics(settings.kafka_bootstrap, internal_topics_of(app, extra_internal_topics),
                               security=client_security(settings)))
    for line in created:
        log.info("internal topic %s", line)
    worker = Worker(app, loglevel=settings.log_level, override_logging=False,
                    redirect_stdouts=False, quiet=True)
    worker.execute_from_commandline()


def assigned_and_recovered(app: faust.App) -> bool:
    """Partitions assigned and tables recovered from their changelogs: the base of readiness.

    Call it on the event loop only (see `serve`)."""
    try:
        recovered = app.tables.recovery.completed.is_set()
    except AttributeError:
        recovered = True
    return bool(recovered and not app.rebalancing)


def internal_topics_of(app: faust.App, extra: Iterable[faust.TopicT] = ()) -> list[InternalTopic]:
    """The topics the app owns: every table's changelog, internal agent sources, and `extra`.

    `extra` is for topics an agent reads among catalogue topics (a timer's ticks merged into
    its source stream), which Faust cannot tell apart as internal.
    """
    topics = [table.changelog_topic for table in app.tables.values()]
    topics += [agent.channel for agent in app.agents.values()
               if isinstance(agent.channel, faust.TopicT) and agent.channel.internal]
    found: dict[str, InternalTopic] = {}
    for topic in [*topics, *extra]:
        for name in topic.topics:
            found[name] = InternalTopic(
                name=name,
                partitions=topic.partitions or app.conf.topic_partitions,
                config=_faust_topic_config(topic),
                replicas=topic.replicas or app.conf.topic_replication_factor,
            )
    return list(found.values())


def _faust_topic_config(topic: faust.TopicT) -> dict[str, str]:
    """The broker config Faust itself would create the topic with."""
    policies = [name for name, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on]
    config = {"cleanup.policy": ",".join(policies)} if policies else {}
    if topic.retention:
        config["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
    return config | {k: str(v) for k, v in (topic.config or {}).items()}


class AgentCrashes:
    """The crashes of a worker's agents: counted, logged, and judged for liveness.

    Faust restarts a crashed agent, which then crashes again on the same cause (a table whose
    changelog layout does not match, a bug on a kind of event) while the process looks alive.
    A worker whose agents crashed `limit` times within `window_s` is not live any more: the
    orchestrator restarts it, which also redoes its partition assignment.
    """

    def __init__(self, service: str, limit: int = 3, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.service, self.limit, self.window_s, self._clock = service, limit, window_s, clock
        self._times: list[float] = []

    def watch(self, app: faust.App) -> None:
        """Hooks every agent of `app` (declared by now); their counters start at 0."""
        for agent in app.agents.values():
            AGENT_CRASHES.labels(self.service, agent.name)
            # Faust's per-agent error hook, which app.agent fills with the app's own handler
            # (it tells the consumer): ours counts first, then calls it.
            agent._on_error = self._chain(agent._on_error)

    def record(self, agent_name: str, exc: BaseException) -> None:
        AGENT_CRASHES.labels(self.service, agent_name).inc()
        now = self._clock()
        self._times = [t for t in self._times if now - t < self.window_s] + [now]
        log.error("agent %s crashed (%d in the last %.0fs): %r", agent_name, len(self._times),
                  self.window_s, exc)

    def crash_looping(self) -> bool:
        now = self._clock()
        return sum(1 for t in self._times if now - t < self.window_s) >= self.limit

    def _chain(self, previous: Any) -> Callable[[Any, BaseException], Any]:
        async def on_error(agent: Any, exc: BaseException) -> None:
            self.record(agent.name, exc)
            if previous is not None:
                await previous(agent, exc)
        return on_error


def serve(app: faust.App, settings: PlatformSettings, lag_interval_s: float = 5.0, *,
          extra_internal_topics: Iterable[faust.TopicT] = (),
          ready: Callable[[], bool] | None = None) -> None:
    """The whole life of a stream service: logging, tracing, /metrics and probes, the worker
    (internal topics first). `ready` replaces the default readiness (assigned and recovered)."""
    from smartcity.observability import configure_logging, start_observability
    from smartcity.tracing import setup_tracing

    configure_logging(settings)
    setup_tracing(settings)
    # Readiness is judged on the event loop and only read by the probe thread: touching Faust's
    # lazily created services (app.tables, its recovery) from the HTTP thread first can bind
    # them to that thread's event loop, and the worker then hangs at startup.
    readiness = {"ready": False}
    crashes = AgentCrashes(settings.service_name)
    crashes.watch(app)
    start_observability(settings, live=lambda: not crashes.crash_looping(),
                        ready=lambda: readiness["ready"])

    @app.timer(min(1.0, lag_interval_s))
    async def _judge_readiness() -> None:
        base = ready() if ready is not None else assigned_and_recovered(app)
        readiness["ready"] = base and not crashes.crash_looping()

    @app.timer(lag_interval_s)
    async def _sample_lag() -> None:
        sample_consumer_lag(app, settings.service_name)

    run_worker(app, settings, extra_internal_topics)
