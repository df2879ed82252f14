"""The Faust side of wifi-telemetry: thin adapters around `core/processor.py` and `core/published.py`.

    wifi.ap-telemetry.v1 ─────────┐ ingest (events taken in batches, gathered up to
    wifi.client-sessions.v1 ──────┘ WIFI_INGEST_BATCH_WAIT_S): decode, validate (a quick
                                      │ check, the general one for the rest; bad → <topic>.dlq),
                                      │ group by site
                                      │  one ApTelemetryBatch / ClientSessionBatch per site
                                      ▼
                               <app>-by-site ─────────┐
    wifi.ap-telemetry-batches.v1 ─────────────────────┤ process (a batch of events at a time):
    wifi.client-session-batches.v1 ───────────────────┘ an edge batch decoded and checked here,
      (keyed by site already: read as they come,          once (a bad reading to <topic>.dlq
       no second hop)                                      alone, with dlq.batch.index)
                                                           table "state": one changelog
                                                           record per changed site (its APs
                                                           inside) and shard per batch
                       timer (core/publishing.py: the APs due, the sites changed since its last pass):
                              AccessPointStatus on change / cadence / silence ─► wifi.ap-status.v1
                              SiteWifiStats when changed                      ─► wifi.site-stats.v1

Why by site: site statistics combine the APs of a site, and a Faust table is partitioned like
its input. With the input keyed by site, one worker owns a site, its APs and its windows, and
every record of a site lives in one changelog partition (see processor.py for how that makes a
crash harmless). Single readings come keyed by AP, so they are re-keyed; edge batches come keyed
by site, and on topics with as many partitions as the table (the default) the processing agent
reads them directly (decoded once, no second hop); with WIFI_SITE_PARTITIONS set otherwise they
are checked and re-keyed to the by-site topic like single readings. Health changes are
published once their batch's state is flushed; everything else is published by the timer from
the table, so a restarted worker republishes the same values. Faust acks a batch's events only
after its handler returned (state flushed, forwards acknowledged), and commits offsets only
after the changelog is flushed.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from collections import Counter as TallyCounter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import faust
from google.protobuf.message import Message
from opentelemetry import trace

from smartcity import topic_names
from smartcity.codec import ProtoCodec
from smartcity.headers import header_value, headers_of
from smartcity.ordering import Arrival
from smartcity.settings import PlatformSettings
from smartcity.streams import StreamService, assigned_and_recovered
from smartcity.streams.batches import TableWriter, event_batches, span_links
from smartcity.streams.dead_letters import Accepted, source_record, trace_context_of
from smartcity.streams.sending import send_record
from smartcity.topics import load_catalogue
from smartcity.tracing import inject_headers, producer_span
from smartcity.v1 import wifi_pb2
from wifi_telemetry.adapters import metrics
from wifi_telemetry.adapters.messages import (
    SESSION_CODEC,
    TELEMETRY_CODEC,
    checked_sample,
    redacted_session,
    sample_from_proto,
    session_from_proto,
    session_is_valid,
    site_stats_proto,
    status_proto,
    telemetry_is_valid,
)
from wifi_telemetry.adapters.state_codec import STATE_CODEC, use_state_codec
from wifi_telemetry.config import WifiConfig
from wifi_telemetry.core.domain import Sample
from wifi_telemetry.core.privacy import client_hash_problem
from wifi_telemetry.core.processor import (
    SessionEvent,
    SiteProcessor,
    TelemetryResult,
    stored_ids,
    write_rank,
)
from wifi_telemetry.core.published import ApView, change_view, view_as_of_now
from wifi_telemetry.core.publishing import Publisher

log = logging.getLogger(__name__)
tracer = trace.get_tracer("wifi_telemetry")

KIND_HEADER = "wifi.kind"
KIND_TELEMETRY = b"telemetry"  # one reading per message (before batches; still read)
KIND_SESSION = b"session"
KIND_TELEMETRY_BATCH = b"telemetry-batch"  # an ApTelemetryBatch of one site
KIND_SESSION_BATCH = b"session-batch"  # a ClientSessionBatch of one site
# Input still to read, per partition, below which the worker counts as caught up (then a
# missing heartbeat really is missing, not waiting in a backlog).
CAUGHT_UP_LAG = 100


# Edge batch messages taken at once (each holds many readings).
EDGE_BATCHES_AT_ONCE = 50
# Messages the processing agent takes at once, and readings applied between two flushes of
# its state. Live, a batch is what came within PROCESS_WITHIN_S (tens of messages). Catching
# up, a batch of 4,000 messages of 20 readings (a 10,000-AP city's eight seconds) writes each
# site's record (its APs inside) once per eight of its batches: encoding the records was a
# third of the cost of a reading when written at every one. But 4,000 edge batches of 200
# readings are 800,000 readings, many seconds of work: the state is flushed every 80,000
# readings on the way (each flush awaits the producer: the loop's other tasks get their turn;
# the group's heartbeats are sent by the consumer's own thread), though the batch is still
# acknowledged, and its offsets committed, only as a whole.
PROCESS_MAX_EVENTS = 4000
FLUSH_EVERY_READINGS = 80_000
# A site statistics pass taking this long (wall clock), or over more windows of one site than
# this (the default lateness keeps about 16), says so in the log, with its figures.
SLOW_STATS_PASS_S = 0.5
MANY_WINDOWS = 100
# Readings per forwarded by-site message at most (well under the producer's request size).
FORWARD_CHUNK = 2000
# How long the by-site stage waits to fill a batch. Each batch writes every key it changed once
# (a site's record with its APs, the distinct shards touched): the longer the wait, the more
# readings share those writes, for this much more latency.
PROCESS_WITHIN_S = 0.05
TELEMETRY_BATCH_CODEC = ProtoCodec(wifi_pb2.ApTelemetryBatch)
# An edge batch's readings are checked by `_SampleCheck`, not by the codec.
UNCHECKED_TELEMETRY_CODEC = ProtoCodec(wifi_pb2.ApTelemetry)
SESSION_BATCH_CODEC = ProtoCodec(wifi_pb2.ClientSessionBatch)


def _readings_of(batch: wifi_pb2.ApTelemetryBatch) -> Sequence[wifi_pb2.ApTelemetry]:
    return batch.readings  # type: ignore[return-value]


def _sessions_of(batch: wifi_pb2.ClientSessionBatch) -> Sequence[wifi_pb2.ClientSession]:
    return batch.sessions  # type: ignore[return-value]


def reading_of_batch_site(batch: wifi_pb2.ApTelemetryBatch, reading: wifi_pb2.ApTelemetry) -> str | None:
    """A batch holds one site's readings: another site's would be counted in the wrong place."""
    if reading.site_id != batch.site_id:
        return f"reading of site {reading.site_id!r} in a batch of site {batch.site_id!r}"
    return None


class _SampleCheck:
    """The check of an edge batch's readings that makes their samples on the way (in order, the
    good ones only): a reading's fields are read once, for the check and the sample both."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def __call__(self, batch: wifi_pb2.ApTelemetryBatch, reading: wifi_pb2.ApTelemetry) -> str | None:
        try:
            sample = checked_sample(reading)
        except ValueError as exc:  # worded as the codec's check words it
            return f"invalid {UNCHECKED_TELEMETRY_CODEC.type_name}: {exc}"
        if sample.site_id != batch.site_id:
            return reading_of_batch_site(batch, reading)
        self.samples.append(sample)
        return None


def session_of_batch_site(batch: wifi_pb2.ClientSessionBatch, session: wifi_pb2.ClientSession) -> str | None:
    """Like `reading_of_batch_site`, and the client hash checked (a raw MAC is redacted)."""
    if session.site_id != batch.site_id:
        return f"session of site {session.site_id!r} in a batch of site {batch.site_id!r}"
    return client_hash_problem(session.client_hash)


def batches_by_site(readings: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """(site, encoded reading) grouped by their site, in arrival order, as by-site batch messages
    (an ApTelemetryBatch, or a ClientSessionBatch: both are the site, field 1, then the
    readings, field 2). Made of the readings' own bytes: a repeated message field is its items'
    encodings one after another, so nothing is copied into a message to be encoded again."""
    groups: dict[str, list[bytes]] = {}
    for site_id, value in readings:
        groups.setdefault(site_id, []).append(value)
    out = []
    for site_id, group in groups.items():
        head = _length_delimited(1, site_id.encode())
        for start in range(0, len(group), FORWARD_CHUNK):
            chunk = group[start:start + FORWARD_CHUNK]
            out.append((site_id, head + b"".join([_length_delimited(2, value) for value in chunk])))
    return out


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    """A protobuf length-delimited field (a string, bytes or message) on the wire."""
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def co_partitioned(config: WifiConfig) -> bool:
    """Whether the edge-batch topics are partitioned like the by-site table (then read directly)."""
    catalogue = load_catalogue()
    return all(catalogue[name].partitions == config.site_partitions
               for name in (topic_names.WIFI_AP_TELEMETRY_BATCHES, topic_names.WIFI_CLIENT_SESSION_BATCHES))


class _Tally:
    """The per-reading metrics of one batch, counted in memory and exported once."""

    def __init__(self) -> None:
        self.events: TallyCounter[tuple[str, str]] = TallyCounter()
        # site -> [rx bytes, tx bytes, reboots, seq gaps given up]
        self.sites: dict[str, list[int]] = {}
        self.oldest: dict[str, float] = {}
        self.aps: set[str] = set()  # the APs the batch's heartbeats were for
        self.applied = 0  # heartbeats and sessions taken, whatever became of them

    def telemetry(self, sample: Sample, result: TelemetryResult) -> None:
        self.applied += 1
        self.events[_TELEMETRY_OUTCOME[result.outcome]] += 1
        self.aps.add(sample.ap_id)
        site = self.sites.get(sample.site_id)
        if site is None:
            site = self.sites[sample.site_id] = [0, 0, 0, 0]
        site[0] += result.rx_bytes
        site[1] += result.tx_bytes
        site[2] += result.reboots
        site[3] += result.skipped_gaps
        if sample.t < self.oldest.get("telemetry", math.inf):
            self.oldest["telemetry"] = sample.t

    def session(self, session: SessionEvent, outcome: str) -> None:
        self.applied += 1
        self.events[("session", outcome)] += 1
        if session.t < self.oldest.get("session", math.inf):
            self.oldest["session"] = session.t

    def record(self, service: WifiTelemetryService) -> None:
        for (kind, outcome), count in self.events.items():
            metrics.EVENTS.labels(kind, outcome).inc(count)
        for site, (rx, tx, reboots, gaps) in self.sites.items():
            if reboots:
                metrics.REBOOTS.labels(site).inc(reboots)
            if gaps:
                metrics.SEQ_GAPS.labels(site).inc(gaps)
            metrics.TRAFFIC.labels(site, "rx").inc(rx)
            metrics.TRAFFIC.labels(site, "tx").inc(tx)
        # Latency per batch, of its oldest reading: the worst case of the batch.
        topics = {"telemetry": service.telemetry_in, "session": service.sessions_in}
        for kind, t in self.oldest.items():
            service.observe_latency(topics[kind].get_topic_name(), t)


# The events counter's labels of each outcome of a heartbeat, made once.
_TELEMETRY_OUTCOME = {arrival: ("telemetry", str(arrival)) for arrival in Arrival}


class WifiTelemetryService(StreamService):
    """The app, its topics, the state table, five agents and the publishing timer."""

    def __init__(self, settings: PlatformSettings, config: WifiConfig) -> None:
        datadir = Path(config.data_dir) / f"{settings.group_id}-data"
        datadir.parent.mkdir(parents=True, exist_ok=True)
        # A short group session: after a crash the partitions move on within seconds, not a minute.
        super().__init__(settings, datadir=str(datadir),
                         broker_session_timeout=config.session_timeout_s,
                         broker_heartbeat_interval=min(3.0, config.session_timeout_s / 4))
        self.config = config
        # Topics.
        self.telemetry_in = self.catalogue_topic(topic_names.WIFI_AP_TELEMETRY)
        self.sessions_in = self.catalogue_topic(topic_names.WIFI_CLIENT_SESSIONS)
        self.telemetry_batches_in = self.catalogue_topic(topic_names.WIFI_AP_TELEMETRY_BATCHES)
        self.session_batches_in = self.catalogue_topic(topic_names.WIFI_CLIENT_SESSION_BATCHES)
        self.by_site = self.internal_topic("by-site", config.site_partitions, merged=True)
        self.telemetry_batches_name = self.telemetry_batches_in.get_topic_name()
        self.session_batches_name = self.session_batches_in.get_topic_name()
        # Edge batches go straight to the processing agent when their topics are partitioned
        # like the table (the default); else (WIFI_SITE_PARTITIONS set otherwise) through the
        # by-site topic like single readings.
        self.direct = co_partitioned(config)
        edge = [self.telemetry_batches_name, self.session_batches_name]
        self.process_in = self.merged_channel(self.by_site.get_topic_name(), *(edge if self.direct else []))
        self.status_out = self.catalogue_topic(topic_names.WIFI_AP_STATUS)
        self.stats_out = self.catalogue_topic(topic_names.WIFI_SITE_STATS)
        # Tables. Every batch rewrites its sites' records: short segments let the broker
        # compact the changelog, so a restart (in-memory store: it reads the changelog) stays quick.
        self.table = self.app.Table("state", partitions=config.site_partitions,
                                    schema=faust.Schema(key_type=str, key_serializer="json",
                                                        value_serializer=STATE_CODEC),
                                    extra_topic_configs={"segment.ms": "600000",
                                                         "min.cleanable.dirty.ratio": "0.2"})
        use_state_codec(self.table)
        # The processor writes through a buffer flushed once per batch of events, in the
        # order its crash safety needs (see processor.write_rank).
        self.writer = TableWriter(self.table, rank=write_rank)
        self.processor = SiteProcessor(config, self.writer, write_behind=True)
        self._generation = -1
        # What the timer publishes: the statuses due, the statistics of the sites that changed.
        self.publisher = Publisher(config, self.processor)
        # The AP and site record ids (with partitions) as of the table's scan in this generation.
        self._scanned_generation = -1
        self._scanned: tuple[dict[str, int], dict[str, int]] = ({}, {})
        self._announced_ready = False
        # Agents and timers.
        self.agent(self.telemetry_in, self.ingest_telemetry, "wifi-ingest-telemetry")
        self.agent(self.sessions_in, self.ingest_sessions, "wifi-ingest-sessions")
        if not self.direct:
            self.agent(self.merged_channel(*edge), self.ingest_edge_batches, "wifi-ingest-edge-batches")
        self.agent(self.process_in, self.process, "wifi-process")
        self.timer(config.tick_interval_s, self.publish_tick, "wifi-publish")

    # -- ingest: decode, validate, re-key by site in batches ------------------------------------

    async def ingest_telemetry(self, stream: faust.StreamT) -> None:
        async for events in event_batches(stream, within_s=self.config.ingest_batch_wait_s):
            items = await self.decode_quickly(events, wifi_pb2.ApTelemetry, telemetry_is_valid,
                                              TELEMETRY_CODEC)
            await self._forward(KIND_TELEMETRY_BATCH, items)

    async def ingest_sessions(self, stream: faust.StreamT) -> None:
        async for events in event_batches(stream, within_s=self.config.ingest_batch_wait_s):
            items = await self.decode_quickly(events, wifi_pb2.ClientSession, session_is_valid,
                                              SESSION_CODEC)
            accepted = []
            for item in items:
                problem = client_hash_problem(item.value.client_hash)
                if problem is None:
                    accepted.append(item)
                    continue
                # The DLQ gets the event with its client id blanked: it may be a raw MAC.
                redacted = redacted_session(item.value).SerializeToString(deterministic=True)
                record = dataclasses.replace(source_record(item.event), value=redacted)
                await self.dlq.publish(record, problem)
                metrics.EVENTS.labels("session", "rejected").inc()
            await self._forward(KIND_SESSION_BATCH, accepted)

    async def ingest_edge_batches(self, stream: faust.StreamT) -> None:
        """Edge batches re-keyed to the by-site topic (only when not partitioned like it): each
        checked here, its good readings sent on (as they came when all passed)."""
        async for events in event_batches(stream, max_events=EDGE_BATCHES_AT_ONCE):
            outgoing: list[tuple[bytes, str, bytes]] = []
            contexts: list[Any] = []
            for event in events:
                good: tuple[Message, bool, Any] | tuple[Message, bool] | None
                if event.message.topic == self.telemetry_batches_name:
                    kind, good = KIND_TELEMETRY_BATCH, await self._telemetry_edge_batch(event, contexts)
                else:
                    kind, good = KIND_SESSION_BATCH, await self._session_edge_batch(event, contexts)
                if good is not None:
                    value = event.value if good[1] else good[0].SerializeToString()
                    outgoing.append((kind, good[0].site_id, value))  # type: ignore[attr-defined]
            await self._send_by_site(outgoing, contexts)

    async def _forward(self, kind: bytes, items: Sequence[Accepted[Any]]) -> None:
        """Re-keys accepted single readings by their site, many per message (their own bytes)."""
        readings = [(item.value.site_id, item.event.value) for item in items]
        await self._send_by_site([(kind, site, value) for site, value in batches_by_site(readings)],
                                 [item.trace_context for item in items])

    async def _send_by_site(self, outgoing: Sequence[tuple[bytes, str, bytes]],
                            contexts: Sequence[Any]) -> None:
        """Sends (kind, site, batch bytes) to the by-site topic in order and waits for the acks
        (only then does Faust ack the events taken), linking the incoming traces."""
        if not outgoing:
            return
        with tracer.start_as_current_span("wifi.ingest", links=span_links(contexts)):
            headers = {kind: inject_headers([(KIND_HEADER, kind)]) for kind in {k for k, _, _ in outgoing}}
            pending, by_site = [], self.by_site.get_topic_name()
            for kind, site_id, value in outgoing:
                pending.append(await send_record(self.app, by_site, site_id.encode(), value,
                                                 headers=headers[kind]))
            for future in pending:
                await future

    async def process(self, stream: faust.StreamT) -> None:
        async for events in event_batches(stream, max_events=PROCESS_MAX_EVENTS, within_s=PROCESS_WITHIN_S):
            await self._process(events)

    async def publish_tick(self) -> None:
        await self._tick()

    # -- processing ----------------------------------------------------------------------------

    async def _process(self, events: Sequence[Any]) -> None:
        if self.app.consumer_generation_id != self._generation:
            # A rebalance: the table may hold what another worker wrote meanwhile.
            self._generation = self.app.consumer_generation_id
            self.processor.forget()
        tally = _Tally()
        changes: list[ApView] = []
        contexts: list[Any] = []
        flushed_at = 0
        for event in events:
            if tally.applied - flushed_at >= FLUSH_EVERY_READINGS:
                flushed_at = tally.applied
                self.processor.flush()
                await self.writer.flush()
            message = event.message
            self.writer.partition = message.partition
            kind: bytes | None
            value: bytes | Message | list[Sample] | None
            if message.topic == self.telemetry_batches_name:
                kind, readings = KIND_TELEMETRY_BATCH, await self._telemetry_edge_batch(event, contexts)
                value = None if readings is None else readings[2]
            elif message.topic == self.session_batches_name:
                kind, sessions = KIND_SESSION_BATCH, await self._session_edge_batch(event, contexts)
                value = None if sessions is None else sessions[0]
            else:
                headers = headers_of(message)
                contexts.append(trace_context_of(headers))
                kind, value = header_value(headers, KIND_HEADER), event.value
            if value is None:
                continue
            try:
                self._apply(kind, value, tally, changes)
            except Exception:  # one bad event must not stop the site's stream
                log.exception("event at %s[%d]@%d not processed", message.topic, message.partition,
                              message.offset)
                metrics.EVENTS.labels(kind.decode() if kind else "unknown", "error").inc()
        with tracer.start_as_current_span("wifi.process", links=span_links(contexts)):
            self.processor.flush()
            await self.writer.flush()  # state first: the statuses below are derived from it
            now = time.time()
            # Encoded and marked before the sends, so the timer does not send them again.
            statuses = [(view.state.ap_id, status_proto(view, now).SerializeToString(deterministic=True))
                        for view in changes]
            self.publisher.batch_published(changes, tally.aps, now)
            topic = self.status_out.get_topic_name()
            for view, (ap_id, value) in zip(changes, statuses, strict=True):
                metrics.HEALTH_CHANGES.labels(view.state.site_id, metrics.health_label(view.health)).inc()
                with producer_span(topic, ap_id) as own:
                    await send_record(self.app, topic, ap_id.encode(), value, headers=own)
                metrics.PUBLISHED.labels(topic_names.WIFI_AP_STATUS).inc()
        tally.record(self)

    async def _telemetry_edge_batch(self, event: Any,
                                    contexts: list[Any]) -> tuple[Message, bool, list[Sample]] | None:
        """An edge batch decoded, its bad readings dead-lettered alone: its good readings as one
        message (the decoded batch itself when all passed, then with True) and as samples, or
        None when none."""
        check = _SampleCheck()
        batch = await self.decode_batch(event, TELEMETRY_BATCH_CODEC, _readings_of, UNCHECKED_TELEMETRY_CODEC,
                                        check=check)
        if batch is None or not batch.items:
            return None
        contexts.append(batch.trace_context)
        if not batch.dead_lettered:
            return batch.batch, True, check.samples
        return (wifi_pb2.ApTelemetryBatch(site_id=batch.batch.site_id, readings=batch.items), False,
                check.samples)

    async def _session_edge_batch(self, event: Any, contexts: list[Any]) -> tuple[Message, bool] | None:
        """Like `_telemetry_edge_batch`; a bad session's client id is redacted in the DLQ."""
        batch = await self.decode_batch(event, SESSION_BATCH_CODEC, _sessions_of, SESSION_CODEC,
                                        check=session_of_batch_site, redact=redacted_session)
        if batch is None or not batch.items:
            return None
        contexts.append(batch.trace_context)
        if not batch.dead_lettered:
            return batch.batch, True
        return wifi_pb2.ClientSessionBatch(site_id=batch.batch.site_id, sessions=batch.items), False

    def _apply(self, kind: bytes | None, value: bytes | Message | list[Sample], tally: _Tally,
               changes: list[ApView]) -> None:
        """Applies one by-site message (bytes) or edge batch (its checked samples, or decoded)."""
        if kind == KIND_TELEMETRY_BATCH and isinstance(value, list):
            for sample in value:
                self._on_sample(sample, tally, changes)
        elif kind == KIND_TELEMETRY_BATCH and not isinstance(value, list):
            batch = value if isinstance(value, Message) else wifi_pb2.ApTelemetryBatch.FromString(value)
            for reading in batch.readings:  # type: ignore[attr-defined]
                self._on_telemetry(reading, tally, changes)
        elif kind == KIND_SESSION_BATCH and not isinstance(value, list):
            batch = value if isinstance(value, Message) else wifi_pb2.ClientSessionBatch.FromString(value)
            for session in batch.sessions:  # type: ignore[attr-defined]
                self._on_session(session, tally)
        elif kind == KIND_TELEMETRY and isinstance(value, bytes):  # one reading a message, as before batches
            self._on_telemetry(wifi_pb2.ApTelemetry.FromString(value), tally, changes)
        elif kind == KIND_SESSION and isinstance(value, bytes):
            self._on_session(wifi_pb2.ClientSession.FromString(value), tally)
        else:
            log.warning("by-site message without a known %s header skipped", KIND_HEADER)

    def _on_telemetry(self, message: wifi_pb2.ApTelemetry, tally: _Tally,
                      changes: list[ApView]) -> None:
        self._on_sample(sample_from_proto(message), tally, changes)

    def _on_sample(self, sample: Sample, tally: _Tally, changes: list[ApView]) -> None:
        result = self.processor.on_telemetry(sample, self.writer.partition)
        tally.telemetry(sample, result)
        if result.changes:  # the view now: the state goes on changing with the batch's next readings
            changes.extend(change_view(copy.deepcopy(result.state), change) for change in result.changes)

    def _on_session(self, message: wifi_pb2.ClientSession, tally: _Tally) -> None:
        session = session_from_proto(message)
        result = self.processor.on_session(session, self.writer.partition)
        tally.session(session, result.outcome)

    # -- publishing ----------------------------------------------------------------------------

    def caught_up(self) -> bool:
        """Whether no input partition has a backlog (only then is silence really silence)."""
        consumer = self.app.consumer
        inputs = {self.telemetry_in.get_topic_name(), self.sessions_in.get_topic_name(),
                  self.by_site.get_topic_name(), self.telemetry_batches_name, self.session_batches_name}
        read: Mapping[Any, int | None] = getattr(consumer, "_read_offset", {})
        committed: Mapping[Any, int | None] = getattr(consumer, "_committed_offset", {})
        for tp in consumer.assignment():
            if tp.topic not in inputs:
                continue
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            last_read = read.get(tp)
            position = max(last_read + 1 if last_read is not None else 0, committed.get(tp) or 0)
            if highwater - position > CAUGHT_UP_LAG:
                return False
        return True

    def _owned_partitions(self) -> set[int]:
        topic = self.by_site.get_topic_name()
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    def _record_ids(self, owned: set[int]) -> tuple[list[str], list[str]]:
        """The ids of the AP and of the site records of the owned partitions.

        The table is scanned once per rebalance (it also holds every session shard: scanning it
        on every full pass cost the city-scale worker 8% of its time); between, an AP or site
        written since the scan is one the processor decoded, and no such record is deleted."""
        generation = self.app.consumer_generation_id
        if self._scanned_generation != generation:
            self._scanned_generation = generation
            self._scanned = stored_ids(list(self.table.items()))
        aps, sites = self.processor.decoded_partitions()
        return ([i for i, p in (self._scanned[0] | aps).items() if p in owned],
                [i for i, p in (self._scanned[1] | sites).items() if p in owned])

    async def _tick(self) -> None:
        if not assigned_and_recovered(self.app):
            return
        if not self._announced_ready:
            self._announced_ready = True
            log.info("wifi-telemetry ready: partitions assigned, state recovered")
        now = time.time()
        started = time.monotonic()
        owned = self._owned_partitions()
        out = self.publisher.tick(now, self.caught_up(), owned, self.app.consumer_generation_id,
                                  lambda: self._record_ids(owned))
        # The statistics are numbers, encoded before the first send; a status is encoded at its
        # send (below): the states go on taking readings while the pass's messages are sent.
        stats = [(s.key, site_stats_proto(s, now).SerializeToString(deterministic=True)) for s in out.stats]
        if out.stats_pass:
            metrics.set_site_gauges(out.gauge_views)
        took = time.monotonic() - started
        await self._send_statuses(out.statuses, now)
        if not out.stats_pass:
            return
        await self._send_all(self.stats_out.get_topic_name(), topic_names.WIFI_SITE_STATS, stats)
        if took >= SLOW_STATS_PASS_S or out.widest > MANY_WINDOWS:  # many sites, or many windows kept
            log.info("site statistics pass took %.2f s (%s): %d sites, %d windows kept (%d at most for "
                     "a site), %d made again, %d published", took,
                     "every site" if out.full else "changed sites", out.sites, out.windows, out.widest,
                     out.made, len(stats))

    async def _send_statuses(self, views: Sequence[ApView], now: float) -> None:
        """Sends a pass's statuses in one producer span. A view whose state took readings since
        (while earlier ones were being sent) is made again first: a batch may meanwhile have
        published the AP's newer status, which an older one sent after it would overwrite."""
        topic, model = self.status_out.get_topic_name(), self.processor.model
        clock = now if self.publisher.live else None
        with producer_span(topic) as headers:
            for built in views:
                view = view_as_of_now(model, built, clock)
                if view is not built:
                    self.publisher.record_status(view, now)
                value = status_proto(view, now).SerializeToString(deterministic=True)
                await send_record(self.app, topic, view.state.ap_id.encode(), value, headers=headers)
        metrics.PUBLISHED.labels(topic_names.WIFI_AP_STATUS).inc(len(views))

    async def _send_all(self, topic: str, name: str, records: Sequence[tuple[str, bytes]]) -> None:
        """Sends a pass's records of one topic in one producer span (not one per message)."""
        with producer_span(topic) as headers:
            for key, value in records:
                await send_record(self.app, topic, key.encode(), value, headers=headers)
        metrics.PUBLISHED.labels(name).inc(len(records))
