"""OpenTelemetry tracing with W3C trace context carried in Kafka headers.

A producer calls `inject_headers()` to add `traceparent`/`tracestate` to a message's headers;
a consumer calls `extract_context(headers)` and starts its span with that context as parent,
so one trace follows an event from the gateway through Kafka into the stream processors.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from smartcity.settings import PlatformSettings

Headers = list[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()


class _HeadersSetter(Setter[Headers]):
    def set(self, carrier: Headers, key: str, value: str) -> None:
        carrier[:] = [(k, v) for k, v in carrier if k != key]
        carrier.append((key, value.encode("ascii")))


class _HeadersGetter(Getter[Sequence[tuple[str, bytes]]]):
    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        values = [v.decode("ascii", "replace") for k, v in carrier if k.lower() == key and v is not None]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [k for k, _ in carrier]


def setup_tracing(settings: PlatformSettings, exporter: SpanExporter | None = None) -> TracerProvider:
    """Installs the global tracer provider; exports over OTLP/HTTP when an endpoint is set."""
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    if exporter is None and settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint.rstrip("/") + "/v1/traces")
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    propagate.set_global_textmap(_PROPAGATOR)
    return provider


def inject_headers(headers: Headers | None = None, context: Context | None = None) -> Headers:
    """Returns headers carrying the current (or given) trace context."""
    carrier: Headers = list(headers or [])
    _PROPAGATOR.inject(carrier, context=context, setter=_HeadersSetter())
    return carrier


def extract_context(headers: Sequence[tuple[str, bytes]] | None) -> Context:
    """The trace context a producer put in the headers (an empty context when none)."""
    return _PROPAGATOR.extract(list(headers or []), getter=_HeadersGetter())
