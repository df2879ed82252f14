"""OpenTelemetry tracing: the tracer provider, trace context in Kafka headers, and the spans of
Kafka messages and gRPC calls named and attributed after OpenTelemetry's semantic conventions.

One trace follows a request or a reading across processes:

    gateway  SERVER  smartcity.v1.Gateway/SubmitRequest      (rpc.system=grpc, rpc.service, ...)
      └ PRODUCER  send requests.commands.v1                  (messaging.system=kafka, ...)
          └ citizen-requests  CONSUMER  process requests.commands.v1
              └ PRODUCER  send requests.state.v1 / requests.events.v1
                  └ gateway  CONSUMER  process requests.state.v1 (the projector)

A producer opens `producer_span(topic, key)` around the send and puts the headers it yields on
the message; a consumer opens `consumer_span(topic, key, headers, ...)` around processing it,
the producer's span as parent. Which header formats carry the context is OTEL_PROPAGATORS'
choice (default `tracecontext,baggage`; `b3`, `b3multi`, `jaeger` where their propagator
package is installed; `none`): see `propagator_from_env`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, Setter, TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from smartcity.settings import PlatformSettings, env_str

Headers = list[tuple[str, bytes]]
# What consumers hand in: Kafka's list of (key, value) pairs, or Faust's mapping.
HeadersIn = Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None

DEFAULT_PROPAGATORS = "tracecontext,baggage"
PROPAGATOR_ENTRY_POINTS = "opentelemetry_propagator"
MESSAGING_SYSTEM = "kafka"
# The integer codes of gRPC statuses (rpc.grpc.status_code is the number, not the name).
GRPC_STATUS_CODES = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
    "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}
# Statuses that are the server's fault: the others are the caller's and leave the span unset
# (semantic conventions for gRPC server spans).
GRPC_SERVER_ERRORS = {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}

_tracer = trace.get_tracer("smartcity")


class _Quiet:
    """The provider setup_tracing installed when nothing is exported (None otherwise): while it
    is the process's provider, this module's spans are made by `_unsampled_span`."""

    __slots__ = ("provider",)

    def __init__(self) -> None:
        self.provider: TracerProvider | None = None


_quiet = _Quiet()
_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)
_UNSAMPLED_RANDOM = TraceFlags(TraceFlags.DEFAULT | TraceFlags.RANDOM_TRACE_ID)


class _HeadersSetter(Setter[Headers]):
    def set(self, carrier: Headers, key: str, value: str) -> None:
        carrier[:] = [(k, v) for k, v in carrier if k != key]
        carrier.append((key, value.encode("ascii")))


class _HeadersGetter(Getter[Sequence[tuple[str, bytes | None]]]):
    def get(self, carrier: Sequence[tuple[str, bytes | None]], key: str) -> list[str] | None:
        values = [v.decode("ascii", "replace") for k, v in carrier if k.lower() == key and v is not None]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes | None]]) -> list[str]:
        return [k for k, _ in carrier]


def propagator_from_env() -> TextMapPropagator:
    """The propagators OTEL_PROPAGATORS names, in order (a comma list; `none` for none).

    Read when tracing is set up rather than at import, and an unknown name is an error naming
    the variable and what is installed (b3 and jaeger come with their own packages).
    """
    raw = env_str("OTEL_PROPAGATORS", DEFAULT_PROPAGATORS)
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    if not names or "none" in names:
        return CompositePropagator([])
    available = {ep.name: ep for ep in entry_points(group=PROPAGATOR_ENTRY_POINTS)}
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ValueError(
            f"OTEL_PROPAGATORS={raw!r}: no propagator {', '.join(map(repr, unknown))} is installed "
            f"(installed: {', '.join(sorted(available))}; b3 and b3multi need the "
            "opentelemetry-propagator-b3 package)"
        )
    return CompositePropagator([available[name].load()() for name in names])


def setup_tracing(settings: PlatformSettings, exporter: SpanExporter | None = None) -> TracerProvider:
    """Installs the global tracer provider and propagators; exports over OTLP/HTTP when an
    endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT).

    With nothing to export to (the deployment's default) no span is recorded: the sampler is
    ALWAYS_OFF, so a span is a context only (its trace id, a new span id, not sampled), still
    propagated in headers and logs, and none of its attributes, events and timing is built to be
    thrown away (a recorded span cost twice as much; spans were a seventh of the gateway's CPU
    per submit). What a process records downstream is unaffected: a batch span starts its own
    trace with links, and a process that exports decides for its own roots. Only a child of a
    span from a process that does not export (the gateway reading back what such a worker
    wrote) is then not sampled either: its parent is not in the backend anyway."""
    if exporter is None and settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint.rstrip("/") + "/v1/traces")
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}),
                              sampler=None if exporter is not None else ALWAYS_OFF)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    _quiet.provider = provider if exporter is None else None
    trace.set_tracer_provider(provider)
    propagate.set_global_textmap(propagator_from_env())
    return provider


def _as_pairs(headers: HeadersIn) -> list[tuple[str, bytes | None]]:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return [(str(k), v) for k, v in headers.items()]
    return list(headers)


def inject_headers(headers: Headers | None = None, context: Context | None = None) -> Headers:
    """Returns headers carrying the current (or given) trace context, in OTEL_PROPAGATORS' formats."""
    carrier: Headers = list(headers or [])
    propagate.get_global_textmap().inject(carrier, context=context, setter=_HeadersSetter())
    return carrier


def extract_context(headers: HeadersIn) -> Context:
    """The trace context a producer put in the headers (an empty context when none)."""
    return propagate.get_global_textmap().extract(_as_pairs(headers), getter=_HeadersGetter())


class _Extracted:
    """The contexts of the last headers read back (`_extracted`), for one propagator."""

    __slots__ = ("contexts", "propagator")

    def __init__(self) -> None:
        self.propagator: TextMapPropagator | None = None
        self.contexts: dict[tuple[tuple[str, bytes | None], ...], Context] = {}


_extracted_cache = _Extracted()
_EXTRACTED_KEPT = 64


def _extracted(headers: Sequence[tuple[str, bytes | None]]) -> Context:
    """`extract_context` of a record's headers, remembered for the next records with the same
    headers: the outputs of one batch of another service, spread over partitions and topics,
    carry one context, and extracting it cost the gateway a fiftieth of its CPU per submit.
    (An extracted context is immutable; a new global propagator starts afresh.)"""
    cache = _extracted_cache
    propagator = propagate.get_global_textmap()
    if cache.propagator is not propagator or len(cache.contexts) >= _EXTRACTED_KEPT:
        cache.propagator, cache.contexts = propagator, {}
    key = tuple(headers)
    context = cache.contexts.get(key)
    if context is None:
        context = cache.contexts[key] = extract_context(key)
    return context


def is_traced(context: Context) -> bool:
    """Whether an extracted context holds a valid span context (a trace came with it)."""
    return trace.get_current_span(context).get_span_context().is_valid


def has_trace_context(headers: HeadersIn) -> bool:
    """Whether the headers carry a valid span context (a traced producer sent the message)."""
    return is_traced(extract_context(headers))


class _Current:
    """A started span, current until the block ends, then ended: what `start_as_current_span`
    does, in one plain context manager instead of the four generator-based ones it stacks per
    span (a quarter of a span's cost; spans were a seventh of the gateway's CPU per submit).
    An exception (not a BaseException such as GeneratorExit) is recorded on the span and sets
    its status to ERROR, as OpenTelemetry's `use_span` does, unless `on_exception` is False."""

    __slots__ = ("_on_exception", "_token", "span")

    def __init__(self, span: Span, on_exception: bool = True) -> None:
        self.span = span
        self._on_exception = on_exception
        self._token: object = None

    def __enter__(self) -> Span:
        self._token = otel_context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]
        span = self.span
        if self._on_exception and isinstance(exc, Exception) and span.is_recording():
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()


def _unsampled_span(context: Context | None) -> Span | None:
    """The span the SDK's tracer makes under ALWAYS_OFF (the parent's trace id, flags of
    randomness and trace state, or a new trace; a new span id; not sampled), made directly:
    the SDK's way (sampler, span metrics, the attributes built first) was about half of what
    a span cost the gateway per submit. None when the process records spans (an exporter
    is set, or setup_tracing did not install the provider): the SDK's tracer decides then."""
    quiet = _quiet.provider
    if quiet is None or trace.get_tracer_provider() is not quiet:
        return None
    ids = quiet.id_generator
    parent = trace.get_current_span(context).get_span_context()
    if parent.is_valid:
        trace_id, random_id, state = parent.trace_id, parent.trace_flags.random_trace_id, parent.trace_state
    else:
        trace_id, random_id, state = ids.generate_trace_id(), ids.is_trace_id_random(), None
    return NonRecordingSpan(SpanContext(trace_id, ids.generate_span_id(), is_remote=False,
                                        trace_flags=_UNSAMPLED_RANDOM if random_id else _UNSAMPLED,
                                        trace_state=state))


def _message_key(key: bytes | str | None) -> str | None:
    if key is None:
        return None
    return key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)


def messaging_attributes(operation: str, topic: str, key: bytes | str | None = None, *,
                         partition: int | None = None, offset: int | None = None,
                         group: str | None = None) -> dict[str, Any]:
    """The semantic-convention attributes of one Kafka message span ("send" or "process")."""
    attributes: dict[str, Any] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.destination.name": topic,
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
    }
    optional = {
        "messaging.kafka.message.key": _message_key(key),
        "messaging.destination.partition.id": None if partition is None else str(partition),
        "messaging.kafka.offset": offset,
        "messaging.consumer.group.name": group,
    }
    attributes.update({name: value for name, value in optional.items() if value is not None})
    return attributes


@contextmanager
def producer_span(topic: str, key: bytes | str | None = None,
                  headers: Headers | None = None, *, parent: Span | None = None) -> Iterator[Headers]:
    """A PRODUCER span `send <topic>` around a send; yields the headers to put on the message
    (the given ones plus the trace context of this span). `parent`: the span it continues
    when that is not the current one (a batch sends after its events' spans have ended)."""
    context = trace.set_span_in_context(parent) if parent is not None else None
    span = _unsampled_span(context) or _tracer.start_span(
        f"send {topic}", context=context, kind=SpanKind.PRODUCER,
        attributes=messaging_attributes("send", topic, key),
    )
    with _Current(span):
        yield inject_headers(headers)


@contextmanager
def consumer_span(topic: str, key: bytes | str | None, headers: HeadersIn, *,
                  partition: int | None = None, offset: int | None = None,
                  group: str | None = None, only_traced: bool = False) -> Iterator[Span]:
    """A CONSUMER span `process <topic>` around processing one message, child of the span
    that produced it (a new trace when the message carries no context; no span at all then
    with `only_traced`, for readers of whole topics such as the gateway's projector)."""
    parent = extract_context(headers)  # once: it costs about as much as starting the span
    if only_traced and not is_traced(parent):
        yield trace.INVALID_SPAN
        return
    span = _unsampled_span(parent) or _tracer.start_span(
        f"process {topic}", context=parent, kind=SpanKind.CONSUMER,
        attributes=messaging_attributes("process", topic, key, partition=partition, offset=offset,
                                        group=group),
    )
    with _Current(span):
        yield span


def traced_runs(records: Sequence[Any], *, group: str | None = None) -> Iterator[Any]:
    """The records of one partition, in order, each run of consecutive records that came with
    the same trace context inside one CONSUMER span `process <topic>`, child of that context
    (records without a trace: no span). The outputs of one batch of another service carry one
    context: read back, they are one span, not one per record. The span has the attributes of
    `consumer_span` for its first record (the key only when every record of the run has it), and
    messaging.batch.message_count when the run holds more than one.

    The span is current while the caller handles the run's records (a generator's `with` is in
    the caller's context); the caller must not stop early without closing the generator."""
    start = 0
    while start < len(records):
        headers = records[start].headers
        end = start + 1
        while end < len(records) and records[end].headers == headers:
            end += 1
        run = records[start:end]
        start = end
        parent = _extracted(headers) if headers else None
        if parent is None or not is_traced(parent):
            yield from run
            continue
        span = _unsampled_span(parent)
        if span is None:
            first = run[0]
            keys = {record.key for record in run}
            attributes = messaging_attributes("process", first.topic, first.key if len(keys) == 1 else None,
                                              partition=first.partition, offset=first.offset, group=group)
            if len(run) > 1:
                attributes["messaging.batch.message_count"] = len(run)
            span = _tracer.start_span(f"process {first.topic}", context=parent, kind=SpanKind.CONSUMER,
                                      attributes=attributes)
        with _Current(span):
            yield from run


def message_span(message: Any, *, group: str | None = None, only_traced: bool = False) -> Any:
    """`consumer_span` of a consumed message: an aiokafka ConsumerRecord or a Faust Message
    (anything with topic, key, headers, partition and offset)."""
    return consumer_span(message.topic, message.key, message.headers, partition=message.partition,
                         offset=message.offset, group=group, only_traced=only_traced)


def rpc_attributes(full_method: str) -> dict[str, Any]:
    """rpc.system, rpc.service and rpc.method of a gRPC method path `/package.Service/Method`."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


@contextmanager
def rpc_server_span(full_method: str, metadata: Sequence[tuple[str, str]]) -> Iterator[Span]:
    """A SERVER span `package.Service/Method` for one incoming gRPC call, child of the caller's
    span when its metadata carries one. Its status is set by `set_rpc_status`, not by an
    exception (an abort is an exception but not always an error)."""
    parent = extract_context([(k, v.encode("ascii", "replace")) for k, v in metadata])
    span = _unsampled_span(parent) or _tracer.start_span(
        full_method.lstrip("/"), context=parent, kind=SpanKind.SERVER, attributes=rpc_attributes(full_method)
    )
    with _Current(span, on_exception=False):
        yield span


def set_rpc_status(code_name: str, message: str = "", span: Span | None = None) -> None:
    """Records a call's gRPC status (by name, e.g. "INVALID_ARGUMENT") on its span: the integer
    rpc.grpc.status_code, and an error status when the server is at fault."""
    span = span or trace.get_current_span()
    span.set_attribute("rpc.grpc.status_code", GRPC_STATUS_CODES.get(code_name, GRPC_STATUS_CODES["UNKNOWN"]))
    if code_name in GRPC_SERVER_ERRORS:
        span.set_status(Status(StatusCode.ERROR, message or code_name))
