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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import faust
from aiokafka.structs import TopicPartition
from opentelemetry import trace

from citizen_requests.adapters import metrics
from citizen_requests.config import ServiceSettings, load_config
from citizen_requests.core.duplicates import DuplicateIndex, candidate_of, flags_to_send
from citizen_requests.core.ledger import (
    Processed,
    process_command,
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
from smartcity.topics import load_catalogue
from smartcity.tracing import message_span, producer_span
from smartcity.v1 import requests_pb2 as pb

SERVICE = "citizen-requests"
COMMANDS = "requests.commands.v1"
# At most this many requests leave the statistics window per flush (the rest at the next ones),
# so the first pass over a long history does not hold the event loop.
EVICTIONS_PER_FLUSH = 10_000
COMMAND_BATCH_WITHIN_S = 0.003

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
        self.summaries = self.internal_topic("summaries", 1, compacting=True)
        self.summaries_name = self.summaries.get_topic_name()
        self.duplicate_flags = self.internal_topic("duplicates", partitions, retention=86400.0, deleting=True)
        self.records = app.Table("requests", partitions=partitions, key_type=bytes, value_type=bytes)
        # Every write of a request record goes through it, flushed once per unit of work (a batch
        # of commands, a tick, a flag update) before its outputs go out: under the lock, so the
        # agents never share unflushed writes.
        self.record_writer = TableWriter(self.records)
        self.summary_table = app.Table("summaries", partitions=1, key_type=bytes, value_type=bytes)
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
        # A batch of commands at a time: decoded and counted per batch, one lock, one span
        # linking the commands' traces; each command still applied and emitted in order. A
        # citizen waits on each command's outcome: a partial batch waits only a few ms for more.
        async for events in event_batches(stream, within_s=COMMAND_BATCH_WITHIN_S):
            items = await self.decode_all(events, self.codec, key_is_request_id)
            if not items:
                continue
            with tracer.start_as_current_span("request.commands",
                                              links=span_links(i.trace_context for i in items)):
                async with self.lock:
                    done = []
                    for item in items:
                        self.record_writer.partition = item.record.partition
                        done.append((item.value.request_id, self._apply_command(item.value)))
                    await self.record_writer.flush()  # each changed record once, before the outputs
                    for item, (request_id, processed) in zip(items, done, strict=True):
                        # A traced command (the gateway's) gets its own span, parent of its outputs.
                        with message_span(item.record, group=self.app.conf.id, only_traced=True):
                            await self._emit(request_id, processed)
            oldest = min(from_timestamp(i.value.issued_time) for i in items)
            self.observe_latency(items[0].record.topic, oldest)

    def _load(self, request_id: str) -> RequestRecord | None:
        raw = self.record_writer.get(request_id.encode())
        return decode_record(raw) if raw else None

    def _apply_command(self, command: pb.RequestCommand) -> Processed:
        processed = process_command(self._load(command.request_id), command, self.config,
                                    outcome_memory=self.knobs.outcome_memory,
                                    history_limit=self.knobs.history_limit)
        self._store(command.request_id, processed)
        return processed

    def _store(self, request_id: str, processed: Processed) -> None:
        if processed.record_changed:
            self.record_writer[request_id.encode()] = encode_record(processed.record)
        request = processed.record.request
        if request is not None:
            due = next_due(request)
            if due is None:
                self.deadlines.pop(request_id, None)
            else:
                self.deadlines[request_id] = due
        metrics.record_outcome(processed, request)

    async def _emit(self, request_id: str, processed: Processed) -> None:
        key = request_id.encode()
        for event in processed.events:
            value = event.SerializeToString(deterministic=True)
            with producer_span(self.events.get_topic_name(), key) as headers:
                await self.events.send(key=key, value=value, headers=headers)
            if event.type == pb.REQUEST_EVENT_TYPE_SLA_BREACHED and not processed.replayed:
                log.info("SLA breached", extra={"fields": {
                    "request_id": request_id, "category": event.request.category,
                    "opd": event.request.opd_code, "kind": pb.SlaKind.Name(event.sla_breach.kind)}})
        if processed.state is not None:
            with producer_span(self.states.get_topic_name(), key) as headers:
                await self.states.send(key=key, value=processed.state.SerializeToString(deterministic=True),
                                       headers=headers)
            summary = summary_of(processed.state).SerializeToString(deterministic=True)
            await self.summaries.send(key=key, value=summary)

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
            await self.ticks.send(key=request_id.encode(), value=repr(as_of).encode())

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
                await self._emit(request_id, processed)

    # ---- statistics

    async def _stats_agent(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            if event.value is None:
                await self._on_tombstone(await self._book(), event.key)
                continue
            try:
                summary = pb.ServiceRequest.FromString(event.value)
            except Exception:  # protobuf raises its own DecodeError; only this service writes here
                log.warning("ignoring an undecodable request summary")
                continue
            book = await self._book()
            if book.version_of(summary.request_id) >= summary.version:
                self._keep_flags(event.key, event.value, summary)
                # Already counted; its flags decided again all the same: a crash may have lost
                # the flags sent the first time (their send was not waited for).
                await self._flag_duplicates(summary, again=True)
                continue  # redelivered or re-emitted
            if book.expired(summary):
                # An old version of a request that left the window (re-emitted by a replayed
                # command, or redelivered): it stays out, and off the topic too.
                await self.summaries.send(key=event.key, value=None)
                continue
            self.summary_table[event.key] = event.value
            # Published by `_flush_stats` a moment later: a burst of changes to one category
            # becomes one stats record instead of one per command.
            self._dirty |= book.update(summary)
            await self._flag_duplicates(summary)

    async def _on_tombstone(self, book: StatsBook, key: bytes) -> None:
        """One of our tombstones, read back (value None: nothing to decode, nothing to dead-letter)."""
        request_id = key.decode(errors="replace")
        raw = self.summary_table.get(key)
        if request_id in book and raw is not None:
            # A newer version reached the topic before the tombstone and came back into the
            # window (a reopen): compaction would keep the tombstone, so write it again after.
            await self.summaries.send(key=key, value=raw)
        elif raw is not None:
            del self.summary_table[key]  # evicted: off the table and its changelog too
            if self.duplicates is not None:
                self.duplicates.discard(request_id)

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
            await self.summaries.send(key=request_id.encode(), value=None)
        if eviction.request_ids:
            log.info("statistics window: %d finished requests left, %d requests in the book",
                     len(eviction.request_ids), len(book))
        return eviction.scopes

    async def _publish_stats(self, book: StatsBook, scopes: set[tuple[pb.StatsScope, str]]) -> None:
        now = time.time()
        for scope in sorted(scopes):
            stats = book.stats(scope, now).SerializeToString(deterministic=True)
            await self.stats.send(key=stats_key(scope).encode(), value=stats)
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

    async def _flag_duplicates(self, summary: pb.ServiceRequest, again: bool = False) -> None:
        """Sends the flags a request decides to the requests whose flags differ from them.

        Done for a request's first version, for any version of one the index does not hold
        yet, and (`again`) for a version read again: a replay after a crash decides again, and
        sends again what the requests still lack (nothing once they carry their flags).
        """
        index = self._duplicate_index()
        candidate = candidate_of(summary)
        if candidate is None or (not again and summary.version > 1 and candidate.request_id in index):
            return
        decided = index.add(candidate)
        for request_id, flags in flags_to_send(decided, self._current_flags(decided)).items():
            await self.duplicate_flags.send(key=request_id.encode(), value=json.dumps(flags).encode())

    def _current_flags(self, request_ids: Iterable[str]) -> dict[str, list[str]]:
        current: dict[str, list[str]] = {}
        for request_id in request_ids:
            raw = self.summary_table.get(request_id.encode())
            if raw is not None:
                current[request_id] = list(pb.ServiceRequest.FromString(raw).possible_duplicate_of)
        return current

    def _keep_flags(self, key: bytes, value: bytes, summary: pb.ServiceRequest) -> None:
        """A version already counted whose flags changed (the duplicates agent wrote it): kept."""
        raw = self.summary_table.get(key)
        if raw is None:
            return
        stored = pb.ServiceRequest.FromString(raw)
        same_version = stored.version == summary.version
        if same_version and stored.possible_duplicate_of != summary.possible_duplicate_of:
            self.summary_table[key] = value

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
                await self._emit(request_id, processed)


def key_is_request_id(key: str, command: pb.RequestCommand) -> str | None:
    """Keyed elsewhere, a command would land on a partition that does not own the request."""
    if key != command.request_id:
        return f"message key {key!r} is not the command's request_id {command.request_id!r}"
    return None


def build_worker() -> RequestsWorker:
    """The worker as configured by the environment (see config.py and smartcity.settings)."""
    settings = PlatformSettings.from_env(SERVICE, default_metrics_port=9103)
    return RequestsWorker(settings, ServiceSettings.from_env(), load_config())

