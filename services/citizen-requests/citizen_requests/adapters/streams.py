"""Faust wiring of citizen-requests: thin adapters around records, domain and stats.

Data flow (topic names without the test/city prefix):

    requests.commands.v1 (6 partitions, key request_id)
        -> agent `commands`: table `requests` (request + recent outcomes, changelog-backed)
        -> requests.events.v1, requests.state.v1, and <app id>-summaries
    <app id>-duplicates (6 partitions, key request_id, co-partitioned with the commands)
        <- agent `stats`: possible-duplicate flags a new request decided (core/duplicates.py)
        -> agent `duplicates`: the flags into the request's record, requests.state.v1
    <app id>-sla-ticks (6 partitions, key request_id, co-partitioned with the commands)
        <- timer: requests whose next due time passed (minus the allowed lateness)
        -> agent `ticks`: flags SLA breaches through the same table and outputs
    <app id>-summaries (ONE partition, key request_id: the request without personal data)
        -> agent `stats`: table `summaries` (latest version per request), StatsBook
        -> requests.stats.v1 ("category:<c>", "opd:<code>") and the open/overdue gauges

Statistics are aggregates over every partition. Each request's summary is repartitioned onto a
dedicated single-partition internal topic, so exactly one worker of the group owns all of them
and computes every category and OPD figure, with one worker or several; its table is
changelog-backed and versions are compared, so redelivery after a crash counts nothing twice.

The statistics roll over a window (REQUESTS_STATS_WINDOW_DAYS): the flush timer evicts finished
requests whose last change is older (see core/stats.py) and writes a tombstone for each onto the
summaries topic, so compaction shrinks it and a restart does not read them again. The stats
agent reads its own tombstones back: it then drops the key from its table (its changelog
shrinks too), or, if a newer version of the request arrived meanwhile (a reopen the tombstone
overtook on the topic), writes that version again after the tombstone so compaction keeps it.

Duplicate flagging needs the requests of every partition, so it is decided where they all
meet: the stats agent keeps an index of the summaries in its (changelogged) table, and when a
request arrives it recomputes the flags that request decides (its own, and its later
neighbours') and sends those that differ from what the requests carry to their partitions. The
flags are thus a function of the submitted requests, not of arrival order or of memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import faust
from aiokafka.structs import TopicPartition
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from citizen_requests.adapters import metrics
from citizen_requests.config import ServiceSettings, load_config
from citizen_requests.core.duplicates import DuplicateIndex, candidate_of, flags_to_send
from citizen_requests.core.ledger import (
    Processed,
    process_commands,
    process_duplicates,
    process_tick,
    summary_of,
)
from citizen_requests.core.lifecycle import validate_envelope
from citizen_requests.core.records import RequestRecord, decode_record, encode_record
from citizen_requests.core.routing import RequestsConfig
from citizen_requests.core.sla import next_due
from citizen_requests.core.stats import Scope, StatsBook, stats_key
from smartcity import topic_names
from smartcity.codec import ProtoCodec, from_timestamp
from smartcity.settings import PlatformSettings
from smartcity.streams import StreamService
from smartcity.streams.batches import TableWriter, event_batches, span_links
from smartcity.streams.dead_letters import Decoded
from smartcity.streams.sending import send_record
from smartcity.topics import load_catalogue
from smartcity.tracing import Headers, inject_headers, messaging_attributes, producer_span
from smartcity.v1 import requests_pb2 as pb

SERVICE = "citizen-requests"
COMMANDS = "requests.commands.v1"
# At most this many requests leave the statistics window per flush (the rest at the next ones),
# so the first pass over a long history does not hold the event loop.
EVICTIONS_PER_FLUSH = 10_000
# How long a partial batch of summaries waits for more: nobody waits on the statistics (they
# are published every REQUESTS_STATS_FLUSH_S, 0.5 s), and at 100 submits/s a 20 ms wait made a
# produce request (the summary table's changelog) for every second submit; 0.25 s, for 25.
STATS_BATCH_WITHIN_S = 0.25

log = logging.getLogger(__name__)
tracer = trace.get_tracer(SERVICE)


class RequestsWorker(StreamService):
    """The Faust app of the service, with its topics, tables, agents and timers."""

    def __init__(self, settings: PlatformSettings, knobs: ServiceSettings, config: RequestsConfig) -> None:
        self.knobs, self.config = knobs, config
        metrics.initialise({name: category.opd for name, category in config.categories.items()})
        # Faust wants a data directory even for in-memory tables: keep it out of the working tree.
        datadir = Path(knobs.datadir)
        datadir.mkdir(parents=True, exist_ok=True)
        super().__init__(settings, datadir=str(datadir / settings.group_id),
                         broker_session_timeout=knobs.broker_session_timeout_s)
        app = self.app
        partitions = load_catalogue()[COMMANDS].partitions
        self.commands = self.catalogue_topic(COMMANDS)
        self.events = self.catalogue_topic(topic_names.REQUESTS_EVENTS)
        self.states = self.catalogue_topic(topic_names.REQUESTS_STATE)
        self.stats = self.catalogue_topic(topic_names.REQUESTS_STATS)
        self.ticks = self.internal_topic("sla-ticks", partitions, retention=86400.0, deleting=True)
        self.ticks_name = self.ticks.get_topic_name()
        self.events_name = self.events.get_topic_name()
        self.states_name = self.states.get_topic_name()
        self.summaries = self.internal_topic("summaries", 1, compacting=True)
        self.summaries_name = self.summaries.get_topic_name()
        self.duplicate_flags = self.internal_topic("duplicates", partitions, retention=86400.0, deleting=True)
        self.duplicate_flags_name = self.duplicate_flags.get_topic_name()
        self.stats_name = self.stats.get_topic_name()
        self.records = app.Table("requests", partitions=partitions, key_type=bytes, value_type=bytes)
        # Every write of a request record goes through it, flushed once per unit of work (a batch
        # of commands, a tick, a flag update) before its outputs go out: under the lock, so the
        # agents never share unflushed writes.
        self.record_writer = TableWriter(self.records)
        self.summary_table = app.Table("summaries", partitions=1, key_type=bytes, value_type=bytes)
        # The stats agent's reads and writes of it, flushed once per batch of summaries.
        self.summary_writer = TableWriter(self.summary_table)
        self.summary_writer.partition = 0
        self.codec = ProtoCodec(pb.RequestCommand, validate_envelope)
        # Both request agents touch the same records; one at a time keeps each read-apply-write
        # and its outputs in order (state versions reach the compacted topic in order).
        self.lock = asyncio.Lock()
        self.duplicates: DuplicateIndex | None = None  # derived from the summary table
        self.deadlines: dict[str, float] = {}
        self.deadlines_stale = True
        self.book: StatsBook | None = None
        self._dirty: set[tuple[pb.StatsScope, str]] = set()
        self._wire()

    def _wire(self) -> None:
        self.agent(self.commands, self._commands_agent, f"{SERVICE}.commands")
        self.agent(self.ticks, self._ticks_agent, f"{SERVICE}.ticks")
        self.agent(self.summaries, self._stats_agent, f"{SERVICE}.stats")
        self.agent(self.duplicate_flags, self._duplicates_agent, f"{SERVICE}.duplicates")
        self.timer(self.knobs.sla_check_interval_s, self._check_slas, f"{SERVICE}.sla")
        self.timer(self.knobs.stats_refresh_s, self._refresh_stats, f"{SERVICE}.stats-refresh")
        self.timer(self.knobs.stats_flush_s, self._flush_stats, f"{SERVICE}.stats-flush")
        self.app.on_partitions_revoked.connect(self._on_rebalance)
        self.app.on_partitions_assigned.connect(self._on_rebalance)

    # ---- readiness and rebalances

    async def _on_rebalance(self, sender: Any, tps: Any, **kwargs: Any) -> None:
        # Partitions moved: what this worker derived from its tables must be derived again.
        self.deadlines_stale = True
        self.book = None
        self.duplicates = None
        self._dirty = set()
        metrics.clear_open_gauges()

    def _owns_stats(self) -> bool:
        return TopicPartition(self.summaries_name, 0) in self.app.assignor.assigned_actives()

    # ---- commands

    async def _commands_agent(self, stream: faust.StreamT) -> None:
        # A batch of commands at a time: decoded, applied (each record read and written once),
        # counted and traced per batch (one span linking the commands' traces); each command's
        # events still go out in order, each request's state once, after its last command.
        # A citizen waits on each command's outcome: a partial batch waits only a few ms for more.
        async for events in event_batches(stream, within_s=self.knobs.command_batch_wait_s):
            items = await self.decode_all(events, self.codec, key_is_request_id)
            if not items:
                continue
            # One CONSUMER span per batch, linked to each command's trace (the gateway's
            # producer span): a submit's trace is followed into the batch through its link, and
            # the batch's outputs carry the batch span's context (one per batch, not a consumer
            # span and producer spans per command: those were a sixth of the worker at 200/s).
            first = items[0].record
            with tracer.start_as_current_span(
                    f"process {first.topic}", kind=SpanKind.CONSUMER,
                    links=span_links(i.trace_context for i in items),
                    attributes=batch_attributes(first.topic, items, self.app.conf.id)):
                async with self.lock:
                    await self._apply_commands(items)
            oldest = min(from_timestamp(i.value.issued_time) for i in items)
            self.observe_latency(items[0].record.topic, oldest)

    async def _apply_commands(self, items: Sequence[Decoded[pb.RequestCommand]]) -> None:
        partition_of = {i.value.request_id: i.record.partition for i in items}
        batch = process_commands(self._load, [i.value for i in items], self.config,
                                 outcome_memory=self.knobs.outcome_memory,
                                 history_limit=self.knobs.history_limit)
        # Each state serialised once: published, and the request of its record (the same
        # request object when the batch's last change to it published a state).
        encoded = {id(state): state.SerializeToString(deterministic=True) for state in batch.states.values()}
        for request_id, record in batch.records.items():
            self.record_writer.partition = partition_of[request_id]
            self.record_writer[request_id.encode()] = encode_record(record, encoded.get(id(record.request)))
            self._track_deadline(request_id, record.request)
        await self.record_writer.flush()  # each changed record once, before the outputs
        metrics.record_outcomes(batch.processed)
        batch_headers = inject_headers()  # the batch span's context, on every output of the batch
        for index, (item, processed) in enumerate(zip(items, batch.processed, strict=True)):
            state = batch.states.get(index)
            state_bytes = None if state is None else encoded[id(state)]
            await self._emit(item.value.request_id, processed, state, batch_headers, state_bytes)

    def _load(self, request_id: str) -> RequestRecord | None:
        raw = self.record_writer.get(request_id.encode())
        return decode_record(raw) if raw else None

    def _store(self, request_id: str, processed: Processed) -> None:
        """One request's record after a tick or a flag update (commands: `_apply_commands`)."""
        if processed.record_changed:
            self.record_writer[request_id.encode()] = encode_record(processed.record)
            self._track_deadline(request_id, processed.record.request)
        metrics.record_outcomes([processed])

    def _track_deadline(self, request_id: str, request: pb.ServiceRequest | None) -> None:
        due = next_due(request) if request is not None else None
        if due is None:
            self.deadlines.pop(request_id, None)
        else:
            self.deadlines[request_id] = due

    async def _emit(self, request_id: str, processed: Processed, state: pb.ServiceRequest | None,
                    headers: Headers | None = None, state_bytes: bytes | None = None) -> None:
        """Hands a request's events, then its state (and summary), to the producer.

        Handed over, not waited for one by one: Faust's commit flushes the producer before it
        commits the offsets, so outputs are on the broker before their commands count as done.
        `headers`: the trace context to carry (a producer span per send when None);
        `state_bytes`: the state already serialised (deterministic), when the caller has it."""
        key = request_id.encode()
        for event in processed.events:
            await self._send(self.events_name, key, event.SerializeToString(deterministic=True), headers)
            if event.type == pb.REQUEST_EVENT_TYPE_SLA_BREACHED and not processed.replayed:
                log.info("SLA breached", extra={"fields": {
                    "request_id": request_id, "category": event.request.category,
                    "opd": event.request.opd_code, "kind": pb.SlaKind.Name(event.sla_breach.kind)}})
        if state is not None:
            if state_bytes is None:
                state_bytes = state.SerializeToString(deterministic=True)
            await self._send(self.states_name, key, state_bytes, headers)
            summary = summary_of(state).SerializeToString(deterministic=True)
            # Its one partition given: the producer's partitioner (murmur2 in Python) skipped.
            await send_record(self.app, self.summaries_name, key, summary, partition=0, headers=[])

    async def _send(self, topic: str, key: bytes, value: bytes | None,
                    headers: Headers | None = None) -> None:
        # Every output goes through `send_record` (the app's producer, not Topic.send: no
        # FutureMessage, callbacks and loop yield per record). Send errors are logged by the producer.
        if headers is None:
            with producer_span(topic, key) as own:
                await send_record(self.app, topic, key, value, headers=own)
        else:
            await send_record(self.app, topic, key, value, headers=headers)

    # ---- SLA timer

    async def _check_slas(self) -> None:
        if not self.ready():
            return
        if self.deadlines_stale:
            self._rebuild_deadlines()
        # A command may arrive this late (event time) and still count as in time.
        as_of = time.time() - self.knobs.sla_allowed_lateness_s
        due = [request_id for request_id, when in self.deadlines.items() if when < as_of]
        for request_id in due:
            # Dropped until the tick is handled: the ticks agent puts the next due time back.
            del self.deadlines[request_id]
            await self._send(self.ticks_name, request_id.encode(), repr(as_of).encode(), [])

    def _rebuild_deadlines(self) -> None:
        deadlines: dict[str, float] = {}
        for key, raw in list(self.records.items()):
            request = decode_record(raw).request
            due = next_due(request) if request is not None else None
            if due is not None:
                deadlines[key.decode()] = due
        self.deadlines, self.deadlines_stale = deadlines, False
        log.info("SLA deadlines rebuilt: %d requests with a running SLA", len(deadlines))

    async def _ticks_agent(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            try:
                request_id, as_of = event.key.decode(), float(event.value)
            except (AttributeError, UnicodeDecodeError, ValueError):
                log.warning("ignoring a malformed SLA tick")
                continue
            async with self.lock:
                self.record_writer.partition = event.message.partition
                processed = process_tick(self._load(request_id), as_of, self.knobs.history_limit)
                self._store(request_id, processed)
                await self.record_writer.flush()
                await self._emit(request_id, processed, processed.state)

    # ---- statistics

    async def _stats_agent(self, stream: faust.StreamT) -> None:
        # Summaries a batch at a time: each changed one written to the table once, then the
        # table flushed (its changelog before the batch's offsets can be committed).
        async for events in event_batches(stream, within_s=STATS_BATCH_WITHIN_S):
            # One book and one index for the whole batch: what they were built from is the
            # table as the batch found it (a rebuild mid-batch would miss its pending writes).
            book, index = await self._book(), self._duplicate_index()
            for event in events:
                await self._on_summary(book, index, event.key, event.value)
            await self.summary_writer.flush()

    async def _on_summary(self, book: StatsBook, index: DuplicateIndex, key: bytes,
                          value: bytes | None) -> None:
        if value is None:
            await self._on_tombstone(book, index, key)
            return
        try:
            summary = pb.ServiceRequest.FromString(value)
        except Exception:  # protobuf raises its own DecodeError; only this service writes here
            log.warning("ignoring an undecodable request summary")
            return
        if book.version_of(summary.request_id) >= summary.version:
            self._keep_flags(key, value, summary)
            # Already counted; its flags decided again all the same: a crash may have lost
            # the flags sent the first time (their send was not waited for).
            await self._flag_duplicates(index, summary, again=True)
            return  # redelivered or re-emitted
        if book.expired(summary):
            # An old version of a request that left the window (re-emitted by a replayed
            # command, or redelivered): it stays out, and off the topic too.
            await self._send(self.summaries_name, key, None, [])
            return
        self.summary_writer[key] = value
        # Published by `_flush_stats` a moment later: a burst of changes to one category
        # becomes one stats record instead of one per command.
        self._dirty |= book.update(summary)
        await self._flag_duplicates(index, summary)

    async def _on_tombstone(self, book: StatsBook, index: DuplicateIndex, key: bytes) -> None:
        """One of our tombstones, read back (value None: nothing to decode, nothing to dead-letter)."""
        request_id = key.decode(errors="replace")
        raw = self.summary_writer.get(key)
        if request_id in book and raw is not None:
            # A newer version reached the topic before the tombstone and came back into the
            # window (a reopen): compaction would keep the tombstone, so write it again after.
            await self._send(self.summaries_name, key, raw, [])
        elif raw is not None:
            del self.summary_writer[key]  # evicted: off the table and its changelog too
            index.discard(request_id)

    async def _book(self) -> StatsBook:
        """The stats book, rebuilt from the summary table after a start or a rebalance."""
        if self.book is None:
            book = StatsBook(self.knobs.utc_offset_h, self.knobs.stats_window_days)
            book.update_all(pb.ServiceRequest.FromString(raw) for raw in list(self.summary_table.values()))
            self.book = book
            log.info("request statistics rebuilt from %d requests", len(book))
            # At once: this also sets the horizon before any further version is read.
            await self._evict(book, limit=None)
            await self._publish_stats(book, set(book.scopes()))
        return self.book

    async def _evict(self, book: StatsBook, limit: int | None = EVICTIONS_PER_FLUSH) -> set[Scope]:
        """Takes the finished requests older than the window out of the book and off the topic."""
        eviction = book.evict(time.time(), limit)
        for request_id in eviction.request_ids:
            await self._send(self.summaries_name, request_id.encode(), None, [])
        if eviction.request_ids:
            log.info("statistics window: %d finished requests left, %d requests in the book",
                     len(eviction.request_ids), len(book))
        return eviction.scopes

    async def _publish_stats(self, book: StatsBook, scopes: set[tuple[pb.StatsScope, str]]) -> None:
        now = time.time()
        for scope in sorted(scopes):
            stats = book.stats(scope, now).SerializeToString(deterministic=True)
            await self._send(self.stats_name, stats_key(scope).encode(), stats, [])
        metrics.set_open_gauges(book.open_by_pair, book.overdue_by_pair)

    async def _flush_stats(self) -> None:
        book = self.book
        if book is None:
            return
        self._dirty |= await self._evict(book)
        if not self._dirty or self.book is not book:  # a rebalance dropped the book meanwhile
            return
        dirty, self._dirty = self._dirty, set()
        await self._publish_stats(book, dirty)

    async def _refresh_stats(self) -> None:
        """Republishes every figure: "today" rolls over at midnight even when nothing happens."""
        if not self.ready() or not self._owns_stats():
            return
        if self.book is None:
            await self._book()  # publishes everything itself
            return
        await self._publish_stats(self.book, set(self.book.scopes()))

    # ---- possible duplicates

    def _duplicate_index(self) -> DuplicateIndex:
        """The index of every request in the summary table, rebuilt after a start or a rebalance."""
        if self.duplicates is None:
            index = DuplicateIndex(self.config.duplicate_distance_m, self.config.duplicate_window_s)
            for raw in list(self.summary_table.values()):
                candidate = candidate_of(pb.ServiceRequest.FromString(raw))
                if candidate is not None:
                    index.add(candidate)
            self.duplicates = index
        return self.duplicates

    async def _flag_duplicates(self, index: DuplicateIndex, summary: pb.ServiceRequest,
                               again: bool = False) -> None:
        """Sends the flags a request decides to the requests whose flags differ from them.

        Done for a request's first version, for any version of one the index does not hold
        yet, and (`again`) for a version read again: a replay after a crash decides again, and
        sends again what the requests still lack (nothing once they carry their flags).
        """
        candidate = candidate_of(summary)
        if candidate is None or (not again and summary.version > 1 and candidate.request_id in index):
            return
        decided = index.add(candidate)
        for request_id, flags in flags_to_send(decided, self._current_flags(decided)).items():
            await self._send(self.duplicate_flags_name, request_id.encode(), json.dumps(flags).encode(), [])

    def _current_flags(self, request_ids: Iterable[str]) -> dict[str, list[str]]:
        current: dict[str, list[str]] = {}
        for request_id in request_ids:
            raw = self.summary_writer.get(request_id.encode())
            if raw is not None:
                current[request_id] = list(pb.ServiceRequest.FromString(raw).possible_duplicate_of)
        return current

    def _keep_flags(self, key: bytes, value: bytes, summary: pb.ServiceRequest) -> None:
        """A version already counted whose flags changed (the duplicates agent wrote it): kept."""
        raw = self.summary_writer.get(key)
        if raw is None:
            return
        stored = pb.ServiceRequest.FromString(raw)
        same_version = stored.version == summary.version
        if same_version and stored.possible_duplicate_of != summary.possible_duplicate_of:
            self.summary_writer[key] = value

    async def _duplicates_agent(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            try:
                request_id, flags = event.key.decode(), [str(f) for f in json.loads(event.value)]
            except (AttributeError, UnicodeDecodeError, ValueError, TypeError):
                log.warning("ignoring malformed duplicate flags")
                continue
            async with self.lock:
                self.record_writer.partition = event.message.partition
                processed = process_duplicates(self._load(request_id), flags)
                self._store(request_id, processed)
                await self.record_writer.flush()
                await self._emit(request_id, processed, processed.state)


def batch_attributes(topic: str, items: Sequence[Decoded[pb.RequestCommand]], group: str) -> dict[str, Any]:
    """The messaging attributes of a batch's span: its topic and size, and the key, partition
    and offset of its message when it holds one (the usual case at a few submits a second)."""
    if len(items) == 1:
        record = items[0].record
        attributes = messaging_attributes("process", topic, items[0].value.request_id,
                                          partition=record.partition, offset=record.offset, group=group)
    else:
        attributes = messaging_attributes("process", topic, group=group)
    attributes["messaging.batch.message_count"] = len(items)
    return attributes


def key_is_request_id(key: str, command: pb.RequestCommand) -> str | None:
    """Keyed elsewhere, a command would land on a partition that does not own the request."""
    if key != command.request_id:
        return f"message key {key!r} is not the command's request_id {command.request_id!r}"
    return None


def build_worker() -> RequestsWorker:
    """The worker as configured by the environment (see config.py and smartcity.settings)."""
    settings = PlatformSettings.from_env(SERVICE, default_metrics_port=9103)
    return RequestsWorker(settings, ServiceSettings.from_env(), load_config())

