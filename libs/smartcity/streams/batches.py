"""The hot path in batches: events taken many at a time, state written per key per batch, and
batch messages whose readings are each decoded-or-dead-lettered on their own.

    stream ─► take_events(max, within) ─► [event, event, ...] ─► handler ─► TableWriter.flush()
                                                                             (one changelog
                  Faust acks the events only after the handler returned ◄────  record per
                  (their offsets are committed after the changelog flush)      changed key)

    batch message ─► decode ─► check each reading ─► DecodedBatch(readings that passed)
                       │             └─► <topic>.dlq: the bad reading alone, headers
                       │                 dlq.source.offset (the batch's) and dlq.batch.index
                       └─► <topic>.dlq: the whole message when it is no batch at all

Why: Faust costs about the same per message whatever the message holds, and a table write
costs a serialisation and a changelog record. Taking events in batches lets a service decode,
count and trace per batch, and write each changed key once per batch instead of per reading.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import faust
from google.protobuf.message import Message
from opentelemetry import trace
from opentelemetry.context import Context

from smartcity.codec import DecodeError, ProtoCodec
from smartcity.dlq import DeadLetterPublisher, SourceRecord
from smartcity.streams.dead_letters import source_record, trace_context_of
from smartcity.streams.metrics import EVENTS_CONSUMED

log = logging.getLogger(__name__)

B = TypeVar("B", bound=Message)
M = TypeVar("M", bound=Message)

# Where inside its batch message a dead-lettered reading was (0-based); the batch's own offset
# is the dead letter's dlq.source.offset.
BATCH_INDEX_HEADER = "dlq.batch.index"
# Events taken at most per batch, and how long a partial batch waits for more. Small enough
# that a batch is processed within tens of milliseconds of its first event.
MAX_BATCH_EVENTS = 1000
BATCH_WITHIN_S = 0.02

# A check of one reading of a batch: the problem to dead-letter it for, or None when fine.
ItemCheck = Callable[[B, M], "str | None"]


async def event_batches(stream: faust.StreamT, max_events: int = MAX_BATCH_EVENTS,
                        within_s: float = BATCH_WITHIN_S) -> AsyncIterator[Sequence[Any]]:
    """The stream's events, up to `max_events` at a time; acked once the caller moved on."""
    async for events in stream.take_events(max_events, within_s):
        yield events


@dataclass(frozen=True)
class DecodedBatch(Generic[B, M]):
    """A batch message with the readings that passed their checks, in the message's order."""

    key: str
    batch: B
    items: list[M]
    record: SourceRecord
    trace_context: Context
    dead_lettered: int = 0


async def decode_batch_or_dead_letter(
        event: Any, codec: ProtoCodec[B], items_of: Callable[[B], Sequence[M]],
        item_codec: ProtoCodec[M], *, publisher: DeadLetterPublisher, service: str,
        check: ItemCheck[B, M] | None = None,
        redact: Callable[[M], M] | None = None) -> DecodedBatch[B, M] | None:
    """The batch with its good readings; each bad reading went to the dead-letter topic alone
    (as `redact` makes it, when given: a reading may carry what must not be kept). None when
    the message itself is no batch (then it went to the dead-letter topic whole)."""
    record = source_record(event)
    try:
        batch = codec.decode(event.value)
        key = event.key.decode("utf-8") if event.key else ""
    except (DecodeError, UnicodeDecodeError) as exc:
        log.warning("dead letter from %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc)
        await publisher.publish(record, str(exc))
        EVENTS_CONSUMED.labels(service, record.topic, "dead_letter").inc()
        return None
    items: list[M] = []
    bad = 0
    for index, item in enumerate(items_of(batch)):
        problem = _problem(item_codec, batch, item, check)
        if problem is None:
            items.append(item)
            continue
        bad += 1
        kept = redact(item) if redact is not None else item
        await publish_item_dead_letter(publisher, record, index, kept, problem)
    if items:
        EVENTS_CONSUMED.labels(service, record.topic, "ok").inc(len(items))
    if bad:
        EVENTS_CONSUMED.labels(service, record.topic, "dead_letter").inc(bad)
    return DecodedBatch(key=key, batch=batch, items=items, record=record,
                        trace_context=trace_context_of(record.headers), dead_lettered=bad)


def _problem(codec: ProtoCodec[M], batch: B, item: M, check: ItemCheck[B, M] | None) -> str | None:
    try:
        codec.check(item)
    except DecodeError as exc:
        return str(exc)
    return check(batch, item) if check is not None else None


async def publish_item_dead_letter(publisher: DeadLetterPublisher, record: SourceRecord, index: int,
                                   item: Message, problem: str) -> None:
    """Sends one reading of a batch message to the dead-letter topic: its own bytes, the batch's
    topic, partition and offset, and its index in the batch."""
    log.warning("dead letter from %s[%d]@%d #%d: %s", record.topic, record.partition, record.offset,
                index, problem)
    alone = SourceRecord(topic=record.topic, partition=record.partition, offset=record.offset,
                         key=record.key, value=item.SerializeToString(deterministic=True),
                         headers=record.headers, value_type=item.DESCRIPTOR.full_name)
    await publisher.publish(alone, problem, [(BATCH_INDEX_HEADER, str(index).encode())])


# A span of a batch links to at most this many of the traces its events came with.
MAX_SPAN_LINKS = 32


def span_links(contexts: Iterable[Context]) -> list[trace.Link]:
    """Links from a batch's span to the traces of its events (those that carried one)."""
    links: list[trace.Link] = []
    for context in contexts:
        if not context:
            continue  # the empty context: no trace came with that event
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            links.append(trace.Link(span_context))
            if len(links) >= MAX_SPAN_LINKS:
                break
    return links


_DELETED = object()


class TableWriter:
    """A Faust table seen through a write-behind buffer: what a batch's handler reads and writes.

    Reads see the batch's own writes; `flush` gives the table one changelog record per changed
    key, on the partition the key was written for (`partition`, set by the handler for the
    events it applies: Faust's own choice, the current event's partition, is meaningless for a
    batch). Keys are flushed by `rank` (lower first, then in order of first write), so a service
    keeps the write order its crash safety depends on (e.g. a summary before the records
    that mark events as applied).
    """

    def __init__(self, table: faust.Table, rank: Callable[[Any], int] = lambda key: 0) -> None:
        self.table = table
        self.rank = rank
        self.partition = -1
        self._dirty: dict[Any, tuple[int, Any]] = {}

    def get(self, key: Any, default: Any = None) -> Any:
        written = self._dirty.get(key)
        if written is None:
            return self.table.get(key, default)
        return default if written[1] is _DELETED else written[1]

    def __contains__(self, key: object) -> bool:
        written = self._dirty.get(key)
        if written is None:
            return key in self.table
        return written[1] is not _DELETED

    def __setitem__(self, key: Any, value: Any) -> None:
        self._dirty[key] = (self.partition, value)

    def __delitem__(self, key: Any) -> None:
        self._dirty[key] = (self.partition, _DELETED)

    def pending(self) -> Iterator[tuple[Any, int, Any]]:
        """What `flush` will write, in its order: (key, partition, value or None to delete)."""
        for key in sorted(self._dirty, key=self.rank):
            partition, value = self._dirty[key]
            yield key, partition, (None if value is _DELETED else value)

    async def flush(self) -> int:
        """Writes every changed key to the table and its changelog; returns how many.

        Each changelog record is handed to the producer here, in order (awaited), not put in
        Faust's send-soon buffer: the commit flushes the producer, but Faust's flush of that
        buffer gives up after 0.1 s without progress, so a large batch of table writes could be
        committed past before its changelog records were sent (found by the kill -9 test: a
        site's record reached the changelog, its APs' did not, their offsets were committed).
        """
        writes = list(self.pending())
        self._dirty.clear()
        data = self.table.data
        for key, _, value in writes:  # the table first, at once: readers see the whole batch
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        changelog = self.table.changelog_topic
        name = changelog.get_topic_name()
        producer = self.table.app.producer
        for key, partition, value in writes:
            # Serialised as Topic.send would, but handed to the producer itself: Topic.send
            # yields to the event loop three times per record (mode's stampede guard around
            # starting the producer), and each yield let the sender ship what had accumulated
            # so far, about one produce request per three records of a flush.
            key_bytes, _ = changelog.prepare_key(key, self.table.key_serializer)
            value_bytes = (None if value is None
                           else changelog.prepare_value(value, self.table.value_serializer)[0])
            await producer.send(name, key_bytes, value_bytes, partition, None, None)
        return len(writes)
