"""smartcity.tracing: propagators from OTEL_PROPAGATORS, and Kafka and gRPC spans named and
attributed after OpenTelemetry's semantic conventions (spans recorded in memory)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from smartcity import tracing


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans ended during the test; the global provider is an SDK one (set once per process)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()


@pytest.fixture
def propagators(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restores the global propagator the test replaces."""
    before = propagate.get_global_textmap()
    yield
    propagate.set_global_textmap(before)


def by_name(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


def headers_with(value: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    monkeypatch.setenv("OTEL_PROPAGATORS", value)
    propagate.set_global_textmap(tracing.propagator_from_env())
    provider = TracerProvider()
    with provider.get_tracer("t").start_as_current_span("outer"):
        from opentelemetry import baggage, context

        token = context.attach(baggage.set_baggage("district", "purbalingga"))
        try:
            return dict(tracing.inject_headers())
        finally:
            context.detach(token)


def test_otel_propagators_chooses_the_header_formats(monkeypatch: pytest.MonkeyPatch,
                                                     propagators: None) -> None:
    assert set(headers_with("tracecontext,baggage", monkeypatch)) == {"traceparent", "baggage"}
    assert set(headers_with("tracecontext", monkeypatch)) == {"traceparent"}
    assert set(headers_with("baggage", monkeypatch)) == {"baggage"}
    assert headers_with("none", monkeypatch) == {}
    monkeypatch.delenv("OTEL_PROPAGATORS")
    assert isinstance(tracing.propagator_from_env(), TextMapPropagator)
    assert set(headers_with(tracing.DEFAULT_PROPAGATORS, monkeypatch)) == {"traceparent", "baggage"}


def test_an_unknown_propagator_is_an_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PROPAGATORS", "tracecontext,b3-typo")
    with pytest.raises(ValueError, match=r"OTEL_PROPAGATORS=.*'b3-typo'.*installed: .*tracecontext"):
        tracing.propagator_from_env()


def test_a_message_is_traced_from_its_producer_span_to_its_consumer_span(spans: InMemorySpanExporter) -> None:
    with tracing.producer_span("requests.commands.v1", b"req-42", [("content-type", b"proto")]) as headers:
        pass
    assert dict(headers)["content-type"] == b"proto" and "traceparent" in dict(headers)
    with tracing.consumer_span("requests.commands.v1", b"req-42", headers, partition=3, offset=17,
                               group="citizen-requests"):
        pass
    send = by_name(spans, "send requests.commands.v1")
    process = by_name(spans, "process requests.commands.v1")
    assert send.kind is SpanKind.PRODUCER and process.kind is SpanKind.CONSUMER
    assert process.parent is not None and send.context is not None
    assert process.parent.span_id == send.context.span_id
    assert process.context is not None and process.context.trace_id == send.context.trace_id
    assert dict(send.attributes or {}) == {
        "messaging.system": "kafka", "messaging.destination.name": "requests.commands.v1",
        "messaging.operation.type": "send", "messaging.operation.name": "send",
        "messaging.kafka.message.key": "req-42",
    }
    assert dict(process.attributes or {}) == {
        "messaging.system": "kafka", "messaging.destination.name": "requests.commands.v1",
        "messaging.operation.type": "process", "messaging.operation.name": "process",
        "messaging.kafka.message.key": "req-42", "messaging.destination.partition.id": "3",
        "messaging.kafka.offset": 17, "messaging.consumer.group.name": "citizen-requests",
    }


def test_a_consumer_span_takes_faust_style_mapping_headers_and_starts_a_trace_without_them(
        spans: InMemorySpanExporter) -> None:
    with tracing.producer_span("wifi.ap-telemetry.v1", "ap-1") as headers:
        pass
    assert tracing.has_trace_context(dict(headers)) and not tracing.has_trace_context(None)
    with tracing.consumer_span("wifi.ap-telemetry.v1", "ap-1", dict(headers)):
        pass
    with tracing.consumer_span("wifi.ap-telemetry.v1", None, {"other": None}):
        pass
    send = by_name(spans, "send wifi.ap-telemetry.v1")
    processed = [s for s in spans.get_finished_spans() if s.name == "process wifi.ap-telemetry.v1"]
    assert [s.parent.span_id if s.parent else None for s in processed] == [send.context.span_id, None]  # type: ignore[union-attr]
    assert "messaging.kafka.message.key" not in (processed[1].attributes or {})


@pytest.mark.parametrize(("code", "number", "error"), [
    ("OK", 0, False), ("INVALID_ARGUMENT", 3, False), ("NOT_FOUND", 5, False),
    ("UNAUTHENTICATED", 16, False), ("INTERNAL", 13, True), ("UNAVAILABLE", 14, True),
])
def test_a_grpc_server_span_has_the_rpc_attributes_and_the_integer_status(
        spans: InMemorySpanExporter, code: str, number: int, error: bool) -> None:
    with tracing.producer_span("t") as caller_headers:
        metadata = [(k, v.decode()) for k, v in caller_headers]
    with tracing.rpc_server_span("/smartcity.v1.Gateway/SubmitRequest", [("x-other", "1"), *metadata]):
        tracing.set_rpc_status(code, "because")
    span = by_name(spans, "smartcity.v1.Gateway/SubmitRequest")
    assert span.kind is SpanKind.SERVER
    assert dict(span.attributes or {}) == {"rpc.system": "grpc", "rpc.service": "smartcity.v1.Gateway",
                                           "rpc.method": "SubmitRequest", "rpc.grpc.status_code": number}
    assert isinstance((span.attributes or {})["rpc.grpc.status_code"], int)
    assert span.status.status_code is (StatusCode.ERROR if error else StatusCode.UNSET)
    caller = by_name(spans, "send t")
    assert span.parent is not None and caller.context is not None
    assert span.parent.span_id == caller.context.span_id


def test_a_span_is_current_inside_its_block_and_an_error_in_it_marks_it_as_open_telemetry_does(
        spans: InMemorySpanExporter) -> None:
    # The spans' own context manager (one frame instead of start_as_current_span's four)
    # against OpenTelemetry's start_as_current_span, the general path.
    reference = trace.get_tracer("reference")
    for raising in (None, ValueError("bad record"), KeyboardInterrupt()):
        spans.clear()
        openers: list[Callable[[], AbstractContextManager[Any]]] = [
            lambda: tracing.consumer_span("t", b"k", None),
            lambda: reference.start_as_current_span("theirs")]
        for opened in openers:
            try:
                with opened() as span:
                    assert trace.get_current_span() is span
                    if raising is not None:
                        raise raising
            except (ValueError, KeyboardInterrupt):
                pass
            assert trace.get_current_span() is not span
        ours = next(s for s in spans.get_finished_spans() if s.name == "process t")
        theirs = by_name(spans, "theirs")
        assert ours.status.status_code == theirs.status.status_code
        assert ours.status.description == theirs.status.description
        assert [e.name for e in ours.events] == [e.name for e in theirs.events]
        assert ours.end_time is not None


def test_a_grpc_server_span_leaves_its_status_to_set_rpc_status_even_when_the_call_raises(
        spans: InMemorySpanExporter) -> None:
    with pytest.raises(ValueError), tracing.rpc_server_span("/smartcity.v1.RequestService/GetRequest", []):
        raise ValueError("aborted")
    span = by_name(spans, "smartcity.v1.RequestService/GetRequest")
    assert span.status.status_code == StatusCode.UNSET
    assert not span.events


@dataclass(frozen=True)
class _Record:
    """What traced_runs reads of a consumed record (aiokafka's ConsumerRecord has these)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.sampled_from([b"req-1", b"req-2", None])),
                     min_size=0, max_size=12))
def test_records_read_in_runs_have_the_parent_a_span_per_record_would_give_them(
        spans: InMemorySpanExporter, plan: list[tuple[int, bytes | None]]) -> None:
    # plan: per record, which producer sent it (0: an untraced one) and its key.
    spans.clear()
    contexts: dict[int, tuple[tuple[str, bytes], ...]] = {0: ()}
    for producer in (1, 2, 3):
        with tracing.producer_span("requests.events.v1", f"p{producer}") as headers:
            contexts[producer] = tuple(headers)
    records = [_Record("requests.events.v1", 4, 100 + i, key, contexts[producer])
               for i, (producer, key) in enumerate(plan)]

    def parent_seen() -> tuple[int | None, str | None]:
        """The producer span a record is handled under, and the key of that span."""
        span = trace.get_current_span()
        if not span.is_recording() or not isinstance(span, ReadableSpan) or span.parent is None:
            return None, None
        return span.parent.span_id, (span.attributes or {}).get("messaging.kafka.message.key")  # type: ignore[return-value]

    seen_in_runs = []
    for _record in tracing.traced_runs(records):
        seen_in_runs.append(parent_seen())
    seen_alone = []
    for record in records:  # the general path: a span per record
        with tracing.message_span(record, only_traced=True):
            seen_alone.append(parent_seen())
    assert [parent for parent, _ in seen_in_runs] == [parent for parent, _ in seen_alone]
    for (_, key_in_run), (_, key_alone) in zip(seen_in_runs, seen_alone, strict=True):
        assert key_in_run in (key_alone, None)
    runs = [s for s in spans.get_finished_spans() if s.name == "process requests.events.v1"]
    traced = [r for r in records if r.headers]
    # One span per traced record alone, plus one per run of records of the same producer.
    run_starts = sum(1 for i, r in enumerate(records)
                     if r.headers and (i == 0 or records[i - 1].headers != r.headers))
    assert len(runs) == len(traced) + run_starts
    assert trace.get_current_span() is trace.INVALID_SPAN or not trace.get_current_span().is_recording()


def test_a_process_that_exports_nothing_records_no_span_but_carries_the_trace_on(
        propagators: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from smartcity.settings import PlatformSettings

    # The providers are used directly: the process's global one stays what the other tests use.
    monkeypatch.setattr(trace, "set_tracer_provider", lambda provider: None)
    quiet = tracing.setup_tracing(PlatformSettings("quiet-service"))
    exporting = tracing.setup_tracing(PlatformSettings("exporting-service"), exporter=InMemorySpanExporter())
    caller = TracerProvider().get_tracer("caller")
    with caller.start_as_current_span("incoming") as incoming:
        for provider, recording in ((quiet, False), (exporting, True)):
            with provider.get_tracer("t").start_as_current_span("send") as span:
                assert span.is_recording() is recording
                headers = dict(tracing.inject_headers())
            carried = trace.get_current_span(tracing.extract_context(headers)).get_span_context()
            assert carried.trace_id == incoming.get_span_context().trace_id  # the same trace...
            assert carried.span_id == span.get_span_context().span_id  # ...through this span
            assert carried.trace_flags.sampled is recording


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parent=st.one_of(
    st.none(),
    st.builds(lambda trace_id, span_id, flags, remote, state: trace.SpanContext(
        trace_id, span_id, is_remote=remote, trace_flags=trace.TraceFlags(flags),
        trace_state=trace.TraceState(state)),
        st.integers(0, 2**128 - 1), st.integers(0, 2**64 - 1), st.integers(0, 255), st.booleans(),
        st.lists(st.tuples(st.sampled_from(["vendor", "other@tenant", "x"]),
                           st.sampled_from(["1", "abc", "z-9"])), max_size=3, unique_by=lambda kv: kv[0]))))
def test_a_quiet_process_makes_the_span_the_sdk_makes_when_it_samples_nothing(
        monkeypatch: pytest.MonkeyPatch, parent: trace.SpanContext | None) -> None:
    # The shortcut (spans made directly while nothing is exported) against the SDK's tracer under
    # ALWAYS_OFF, the general path: same trace, flags, state and remoteness; a new valid span id.
    from smartcity.settings import PlatformSettings

    with monkeypatch.context() as patch:
        patch.setattr(trace, "set_tracer_provider", lambda provider: None)
        quiet = tracing.setup_tracing(PlatformSettings("quiet-service"))
        patch.setattr(trace, "get_tracer_provider", lambda: quiet)
        context = None if parent is None else trace.set_span_in_context(trace.NonRecordingSpan(parent))
        ours = tracing._unsampled_span(context)
        theirs = quiet.get_tracer("reference").start_span("reference", context=context)
    assert ours is not None and not ours.is_recording()
    mine, sdk = ours.get_span_context(), theirs.get_span_context()
    assert (mine.trace_id == sdk.trace_id) is (parent is not None and parent.is_valid)
    assert (mine.is_valid, mine.is_remote, mine.trace_flags, mine.trace_state) == (
        sdk.is_valid, sdk.is_remote, sdk.trace_flags, sdk.trace_state)
    assert mine.span_id != 0
    # Once the process's provider is not the quiet one (one that exports), the SDK decides again.
    assert tracing._unsampled_span(context) is None
