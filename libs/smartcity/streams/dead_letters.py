"""Decode-or-dead-letter: every consumed record is either decoded (and validated) or sent to
its topic's dead-letter twin, and the agent carries on.

    record ─► decode ─► validate ─► Decoded(key, value, record, trace context)
                 └──────────┴─────► <topic>.dlq (original bytes + dlq.error header)

This is the one place per-message overhead of the stream services is paid: keep it small.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import faust
from google.protobuf.message import DecodeError as _ProtobufDecodeError
from google.protobuf.message import Message
from opentelemetry.context import Context

from smartcity.codec import DecodeError, ProtoCodec
from smartcity.dlq import DeadLetter, DeadLetterPublisher, SourceRecord
from smartcity.headers import headers_of
from smartcity.streams.metrics import EVENTS_CONSUMED
from smartcity.streams.sending import send_record
from smartcity.tracing import extract_context

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)
# A check after decoding: the problem to dead-letter the record for, or None when it is fine.
Validator = Callable[[str, M], "str | None"]


@dataclass(frozen=True)
class Decoded(Generic[M]):
    """A decoded message with where it came from and the trace context it carried."""

    key: str
    value: M
    record: SourceRecord
    trace_context: Context


def faust_dead_letter_publisher(app: faust.App, service: str) -> DeadLetterPublisher:
    """Publishes dead letters through the app's producer and waits for the broker's ack."""

    async def send(letter: DeadLetter) -> None:
        await (await send_record(app, letter.topic, letter.key, letter.value, headers=list(letter.headers)))

    return DeadLetterPublisher(service, send)


def source_record(event: Any) -> SourceRecord:
    """Where a Faust event came from, with its bytes and headers (what a dead letter keeps)."""
    message = event.message
    return SourceRecord(topic=message.topic, partition=message.partition, offset=message.offset,
                        key=event.key, value=event.value, headers=headers_of(message))


async def decode_or_dead_letter(event: Any, codec: ProtoCodec[M], publisher: DeadLetterPublisher,
                                service: str, validate: Validator[M] | None = None,
                                ) -> Decoded[M] | None:
    """The event decoded, or None once it went to the dead-letter topic."""
    item = await _decode(event, codec, publisher, validate)
    outcome = "dead_letter" if item is None else "ok"
    EVENTS_CONSUMED.labels(service, event.message.topic, outcome).inc()
    return item


async def decode_all_or_dead_letter(events: Sequence[Any], codec: ProtoCodec[M],
                                    publisher: DeadLetterPublisher, service: str,
                                    validate: Validator[M] | None = None) -> list[Decoded[M]]:
    """Events taken as a batch, decoded; what cannot be goes to the dead-letter topic. The
    consumed counter moves once per batch and topic, not once per event."""
    items: list[Decoded[M]] = []
    consumed = _BatchConsumed()
    for event in events:
        item = await _decode(event, codec, publisher, validate)
        consumed.add(item is not None, event.message.topic)
        if item is not None:
            items.append(item)
    consumed.count(service)
    return items


class _BatchConsumed:
    """The consumed counter's moves of one batch, per outcome and topic, made once at its end."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, ok: bool, topic: str) -> None:
        counted = ("ok" if ok else "dead_letter", topic)
        self._counts[counted] = self._counts.get(counted, 0) + 1

    def count(self, service: str) -> None:
        for (outcome, topic), count in self._counts.items():
            EVENTS_CONSUMED.labels(service, topic, outcome).inc(count)


class Accepted(NamedTuple, Generic[M]):
    """An event taken by `decode_all_quickly`: the Faust event, its value decoded, and the
    trace context it carried (the empty one when it carried none)."""

    event: Any
    value: M
    trace_context: Context


async def decode_all_quickly(events: Sequence[Any], message_type: type[M], quick: Callable[[M], bool],
                             codec: ProtoCodec[M], *, publisher: DeadLetterPublisher,
                             service: str) -> list[Accepted[M]]:
    """`decode_all_or_dead_letter` for the hot path, the same events taken in the same order
    and the same ones dead-lettered: each value parsed, and when `quick` says it is valid (it
    may say no to a valid one, never yes to an invalid one) and its key is text, taken with no
    `SourceRecord` or `Decoded` made (half the cost of a single reading's decode); any other
    goes the general way (decoded again by `codec`, validated, dead-lettered with its reason)."""
    taken: list[Accepted[M]] = []
    consumed = _BatchConsumed()
    parse = message_type.FromString
    for event in events:
        message = event.message
        try:
            value = parse(event.value)
            if event.key:
                event.key.decode("utf-8")
            good = quick(value)
        except (_ProtobufDecodeError, RuntimeError, ValueError, TypeError):
            good = False  # the general way says why
        if good:
            traced = getattr(message, "headers", None)
            context = trace_context_of(headers_of(message)) if traced else _EMPTY_CONTEXT
            taken.append(Accepted(event, value, context))
        else:
            item = await _decode(event, codec, publisher, None)
            if item is not None:
                taken.append(Accepted(event, item.value, item.trace_context))
            good = item is not None
        consumed.add(good, message.topic)
    consumed.count(service)
    return taken


async def _decode(event: Any, codec: ProtoCodec[M], publisher: DeadLetterPublisher,
                  validate: Validator[M] | None) -> Decoded[M] | None:
    record = source_record(event)
    try:
        value = codec.decode(event.value)
        key = event.key.decode("utf-8") if event.key else ""
        problem = validate(key, value) if validate is not None else None
        if problem is not None:
            raise DecodeError(problem)
    except (DecodeError, UnicodeDecodeError) as exc:
        log.warning("dead letter from %s[%d]@%d: %s", record.topic, record.partition,
                    record.offset, exc)
        await publisher.publish(record, str(exc))
        return None
    return Decoded(key=key, value=value, record=record, trace_context=trace_context_of(record.headers))


def trace_context_of(headers: Sequence[tuple[str, bytes]]) -> Context:
    """The trace context in the headers; the empty one, without the propagator's cost, when
    no header carries one."""
    for header in headers:
        if header[0] in _TRACE_HEADERS:
            return extract_context(headers)
    return _EMPTY_CONTEXT


_TRACE_HEADERS = frozenset({"traceparent", "tracestate", "baggage"})
_EMPTY_CONTEXT = Context()


async def decoded(stream: faust.StreamT, codec: ProtoCodec[M], publisher: DeadLetterPublisher,
                  service: str, validate: Validator[M] | None = None) -> AsyncIterator[Decoded[M]]:
    """Yields each message decoded; sends what cannot be decoded to the DLQ and carries on."""
    async for event in stream.events():
        item = await decode_or_dead_letter(event, codec, publisher, service, validate)
        if item is not None:
            yield item
