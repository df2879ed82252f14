"""Faust wiring of camera-health: a thin adapter around `domain.CameraMonitor`.

    in    camera.heartbeats.v1                       CameraHeartbeat, key camera_id
          camera.heartbeat-batches.v1                CameraHeartbeatBatch, key site_id: decoded
                                                      once, each heartbeat checked (a bad one to
                                                      the DLQ alone) and applied here when its
                                                      camera's partition is this worker's (see
                                                      routes.py), else forwarded ─► by-camera
          <app id>-by-camera (internal, co-partitioned) CameraHeartbeatBatch per camera partition
          <app id>-ticks (internal, co-partitioned)   silence-timer ticks, key camera_id
    out   camera.status.v1 (compacted)               CameraStatus on changes and every
                                                      CAMERA_STATUS_INTERVAL_S
          camera.incidents.v1                        CameraIncident opened / resolved
          camera.heartbeats.v1.dlq                   what could not be decoded or validated
          camera.heartbeat-batches.v1.dlq            the same for batches (dlq.batch.index)
    table cameras (changelog <app id>-cameras-changelog): the CameraState of each camera, on
          the changelog partition of the camera's own partition

One agent reads heartbeats, edge batches, forwarded batches and ticks together, a batch of
events at a time, so a camera's state only ever changes in one order: the timer never races
the stream. The timer itself only reads the table and sends ticks (Faust tables can only be
changed from a stream).

Crash safety (at-least-once): a batch's outputs (and forwards) are sent and acknowledged
*before* its new states are put in the table (once per changed camera), Faust acks the batch's
events only after that, and it flushes the changelog before it commits offsets. After a crash
an event is either reprocessed (its outputs are sent again: same incident ids, statuses
compacted by key; heartbeats already applied are duplicates by seq) or already reflected in
the recovered state (its outputs went out before).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from typing import Any

import faust
from aiokafka.partitioner import murmur2
from opentelemetry import trace

from camera_health.adapters import metrics
from camera_health.adapters.messages import (
    HEARTBEATS,
    SOURCES_OR_NONE,
    TAMPER_NAMES,
    StateEncoder,
    checked_sample,
    encode_incident,
    encode_status,
    sample_from_heartbeat,
)
from camera_health.adapters.routes import BARRIER_KEY, FORWARDED_BY_HEADER, CameraRoutes
from camera_health.config import ServiceConfig
from camera_health.core.clock import ReceiptClock
from camera_health.core.domain import CameraMonitor, CameraState, MonitorEffects, QuietLane
from camera_health.core.model import AGENT, Sample
from smartcity import topic_names
from smartcity.codec import DecodeError, ProtoCodec
from smartcity.deadlines import Deadlines
from smartcity.headers import header_value, headers_of
from smartcity.health import Health
from smartcity.ordering import Arrival
from smartcity.settings import PlatformSettings
from smartcity.streams import EVENTS_CONSUMED, StreamService, assigned_and_recovered
from smartcity.streams.batches import TableWriter, event_batches, publish_item_dead_letter, span_links
from smartcity.streams.dead_letters import trace_context_of
from smartcity.streams.sending import send_record
from smartcity.topics import load_catalogue
from smartcity.tracing import inject_headers, message_span, producer_span
from smartcity.v1 import camera_pb2

log = logging.getLogger(__name__)
tracer = trace.get_tracer("camera-health")

SERVICE = "camera-health"
MIN_STALL_S = 2.0
TICKS_RETENTION_S = 3600.0  # ticks are only useful for seconds


# Heartbeats per forwarded by-camera message at most (well under the producer's request size).
FORWARD_CHUNK = 2000
BATCH_CODEC = ProtoCodec(camera_pb2.CameraHeartbeatBatch)
# How long the agent waits to fill a batch: each batch writes each camera it touched once (its
# state record), so the longer the wait, the more heartbeats of a camera share that write, for
# this much more latency.
PROCESS_WITHIN_S = 0.05


def _none_checked_there(batch: camera_pb2.CameraHeartbeatBatch) -> Sequence[camera_pb2.CameraHeartbeat]:
    """For the shared batch decoder: the heartbeats are checked by `on_edge_batch`, in one pass."""
    return ()


def heartbeat_of_batch_site(batch: camera_pb2.CameraHeartbeatBatch,
                            heartbeat: camera_pb2.CameraHeartbeat) -> str | None:
    """A batch holds one site's heartbeats (its key): another site's is a collector's mistake."""
    if heartbeat.site_id != batch.site_id:
        return f"heartbeat of site {heartbeat.site_id!r} in a batch of site {batch.site_id!r}"
    return None


class CameraPartitions:
    """The partition of camera.heartbeats.v1 a camera's single heartbeats go to (the producers'
    default partitioner: murmur2 of the key), remembered per camera."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._known: dict[str, int] = {}

    def __call__(self, camera_id: str) -> int:
        partition = self._known.get(camera_id)
        if partition is None:
            partition = (murmur2(camera_id.encode()) & 0x7FFFFFFF) % self.count
            self._known[camera_id] = partition
        return partition


class _Batch:
    """One batch of the agent's events: the states it touched (loaded once), its effects in
    order, the cameras whose state changed, and its metrics counted in memory."""

    def __init__(self, service: CameraHealthService) -> None:
        self.service = service
        self.states: dict[str, CameraState] = {}
        self.effects: list[MonitorEffects] = []
        self.changed: set[str] = set()
        self.contexts: list[Any] = []
        # The span of each camera's traced heartbeat (a traced device's): its status continues it.
        self.traced: dict[str, Any] = {}
        self.singles = 0  # heartbeats one a message, decoded fine
        self.events: Tally[tuple[str, str]] = Tally()  # (source, arrival): labels once per batch
        self.oldest = math.inf
        # Edge-batch heartbeats of camera partitions not applied here, per partition, in order.
        self.forwards: dict[int, list[camera_pb2.CameraHeartbeat]] = {}
        self.routed: Tally[str] = Tally()  # edge-batch heartbeats by route, counted once per batch
        self.quiet = 0  # heartbeats taken the short way (agent, applied)
        self.heard: set[str] = set()  # cameras with a heartbeat in the batch
        # Cameras whose next agent heartbeats can take the short way, until another path
        # touches them (on_sample, on_tick drop theirs).
        self.lanes: dict[str, QuietLane] = {}
        # Cameras changed another way than through a lane: their records encoded in full.
        self.general: set[str] = set()

    def known(self, camera_id: str) -> bool:
        return camera_id in self.states or self.service.stored_state(camera_id) is not None

    def state(self, camera_id: str) -> CameraState:
        state = self.states.get(camera_id)
        if state is None:
            state = self.service.stored_state(camera_id) or self.service.monitor.new_state(camera_id)
            self.states[camera_id] = state
        return state

    def took(self, sample: Sample, outcome: MonitorEffects) -> None:
        if outcome.statuses or outcome.incidents:  # most heartbeats publish nothing
            self.effects.append(outcome)
        if outcome.changed:
            self.changed.add(sample.camera_id)
        self.events[(sample.source, outcome.arrival)] += 1
        self.oldest = min(self.oldest, sample.at)

    def took_quietly(self, sample: Sample) -> None:
        self.quiet += 1
        self.changed.add(sample.camera_id)
        self.oldest = min(self.oldest, sample.at)

    def record_metrics(self) -> None:
        if self.quiet:
            self.events[(AGENT, Arrival.APPLIED)] += self.quiet
        for (source, arrival), count in self.events.items():
            metrics.EVENTS.labels(source, str(arrival)).inc(count)
        for route, count in self.routed.items():
            metrics.BATCH_ROUTES.labels(route).inc(count)
        if self.events:  # latency per batch, of its oldest heartbeat: the batch's worst case
            self.service.observe_latency(self.service.heartbeats_name, self.oldest)


def _checked(heartbeat: camera_pb2.CameraHeartbeat) -> Sample:
    """The sample of a heartbeat the edge-batch loop already found valid."""
    sample = checked_sample(heartbeat)
    if sample is None:  # the loop's check is `checked_sample`'s: cannot happen
        raise ValueError(f"heartbeat of {heartbeat.camera_id!r} passed the batch check, not checked_sample")
    return sample


def partitions() -> int:
    return load_catalogue()[topic_names.CAMERA_HEARTBEATS].partitions


def good_heartbeat(key: bytes | None, value: bytes | None) -> camera_pb2.CameraHeartbeat | None:
    """The heartbeat when it decodes, validates and is keyed by its camera; else None (then
    `decode` with `key_matches_camera` says why, for the dead letter)."""
    try:
        heartbeat = HEARTBEATS.decode(value)
        if key is not None and key.decode("utf-8") == heartbeat.camera_id:
            return heartbeat
    except (DecodeError, UnicodeDecodeError):
        pass
    return None


def key_matches_camera(key: str, heartbeat: camera_pb2.CameraHeartbeat) -> str | None:
    """A heartbeat keyed by another camera would land in the wrong partition's state."""
    if key != heartbeat.camera_id:
        return f"key {key!r} does not match camera_id {heartbeat.camera_id!r}"
    return None


class CameraHealthService(StreamService):
    """The app, its topics, the cameras table, the agent (heartbeats, edge batches, forwarded
    batches and ticks) and the timer."""

    def __init__(self, settings: PlatformSettings, config: ServiceConfig) -> None:
        super().__init__(settings, broker_session_timeout=config.session_timeout_s,
                         broker_heartbeat_interval=min(3.0, config.session_timeout_s / 4))
        self.config = config
        # Availability deferred: a batch publishes only each camera's newest status (`_publish`).
        self.monitor = CameraMonitor(config.thresholds, config.reorder_window_s, config.reorder_max_pending,
                                     defer_availability=True)
        # A tick back later than a quarter of the tolerance (2 s at least, more than a tick's
        # round trip under load): the worker had stalled (core/clock.py).
        self.clock = ReceiptClock(stall_s=max(config.thresholds.defaults.heartbeat_tolerance_s / 4,
                                              MIN_STALL_S))
        # Topics. The ticks and the forwarded batches are internal and co-partitioned with the
        # heartbeats; one agent reads the four through one channel (so `serve` must create the
        # internal ones first: merged).
        self.heartbeats_in = self.catalogue_topic(topic_names.CAMERA_HEARTBEATS)
        self.batches_in = self.catalogue_topic(topic_names.CAMERA_HEARTBEAT_BATCHES)
        self.ticks = self.internal_topic("ticks", partitions(), merged=True, deleting=True,
                                         retention=TICKS_RETENTION_S)
        self.by_camera = self.internal_topic("by-camera", partitions(), merged=True)
        self.heartbeats_name = self.heartbeats_in.get_topic_name()
        self.batches_name = self.batches_in.get_topic_name()
        self.ticks_name = self.ticks.get_topic_name()
        self.by_camera_name = self.by_camera.get_topic_name()
        self.source = self.merged_channel(self.heartbeats_name, self.batches_name, self.by_camera_name,
                                          self.ticks_name)
        self.status_out = self.catalogue_topic(topic_names.CAMERA_STATUS)
        self.incidents_out = self.catalogue_topic(topic_names.CAMERA_INCIDENTS)
        self.status_name = self.status_out.get_topic_name()
        self.incidents_name = self.incidents_out.get_topic_name()
        # Tables. Keys and values are JSON (Faust's default for untyped tables): camera_id -> state,
        # written once per changed camera per batch of events.
        # Keys are JSON (as before), values the JSON bytes of `StateEncoder` (what Faust's json
        # serialiser wrote before, so an older changelog still reads).
        self.table = self.app.Table("cameras", partitions=partitions(),
                                    schema=faust.Schema(key_type=str, key_serializer="json",
                                                        value_serializer="raw"))
        self.encoder = StateEncoder()
        self.writer = TableWriter(self.table)
        self.partition_of = CameraPartitions(partitions())
        self.routes: CameraRoutes[Sample] = CameraRoutes()
        # The table's states decoded (decoding a state costs more than applying a heartbeat to
        # it), kept equal to the table: updated when a batch writes, dropped on a rebalance
        # (the table may then hold what another worker wrote) and when a batch fails.
        self.states: dict[str, CameraState] = {}
        self._generation = -1
        # What the timer watches, kept per batch instead of found by decoding every camera of
        # the table at every tick: the owned cameras' (site, health, open incident) for the
        # gauges, when each falls silent, and which wait on a seq gap. Rebuilt from the table
        # once per rebalance.
        self.fleet: dict[str, tuple[str, Health, bool]] = {}
        self.silences = Deadlines()
        self.gapped: set[str] = set()
        self._fleet_changed = True
        self._watched_generation = -1
        # Agents and timers.
        self.agent(self.source, self.process, "camera-health")
        self.timer(config.silence_check_interval_s, self.watch, "camera-health-watch")
        self._next_refresh = time.monotonic() + config.status_interval_s

    # --- the agent -----------------------------------------------------------------------

    async def process(self, stream: faust.StreamT) -> None:
        async for events in event_batches(stream, within_s=PROCESS_WITHIN_S):
            await self._process(events)

    async def _process(self, events: Sequence[Any]) -> None:
        """A batch of events in partition order: states loaded once, outputs sent and
        acknowledged, then each changed state written once (crash safety: see the top)."""
        if self.app.consumer_generation_id != self._generation:
            self._generation = self.app.consumer_generation_id
            self.states.clear()
            self.encoder.forget()
            await self._open_routes()
        batch = _Batch(self)
        try:
            await self._apply_all(batch, events)
            with tracer.start_as_current_span("camera-health.process", links=span_links(batch.contexts)):
                forwarded = await self._forward(batch.forwards)
                await self._publish(batch.effects, batch.states, batch.traced)
                for future in forwarded:
                    await future
                for camera_id in batch.changed:
                    state = self.states[camera_id] = batch.states[camera_id]
                    self.writer.partition = state.meta.partition
                    self.writer[camera_id] = self.encoder.encode(state, quiet=camera_id not in batch.general)
                await self.writer.flush()
        except BaseException:
            self.states.clear()  # changed in memory, maybe not in the table
            self.encoder.forget()  # its templates may be of records never written
            self._generation = -1  # routes opened again (held heartbeats maybe unforwarded)
            raise
        self.clock.heard_all(batch.heard)
        for camera_id, state in batch.states.items():
            self._watch(camera_id, state)
        batch.record_metrics()

    async def _apply_all(self, batch: _Batch, events: Sequence[Any]) -> None:
        for event in events:
            topic = event.message.topic
            if topic == self.batches_name:
                await self.on_edge_batch(batch, event)
            elif topic == self.ticks_name:
                self.on_tick(batch, event.key, event.value, event.message.partition)
            elif topic == self.by_camera_name:
                self.on_heartbeat_batch(batch, event)
            else:
                await self.on_single_heartbeat(batch, event)
        if batch.singles:  # counted once per batch
            EVENTS_CONSUMED.labels(self.service, self.heartbeats_name, "ok").inc(batch.singles)

    async def on_single_heartbeat(self, batch: _Batch, event: Any) -> None:
        """One heartbeat a message: decoded and checked in one go, dead-lettered (by the shared
        path, which names the problem) when that fails; a span of its own only when it came
        with a trace."""
        message = event.message
        heartbeat = good_heartbeat(event.key, event.value)
        if heartbeat is None:
            item = await self.decode(event, HEARTBEATS, key_matches_camera)
            if item is None:
                return
            heartbeat = item.value
        else:
            batch.singles += 1
        context = trace_context_of(headers_of(message)) if message.headers else None
        if not context:  # no trace came with it (the empty context is falsy too)
            self.on_heartbeat(batch, heartbeat, message.partition)
            return
        batch.contexts.append(context)
        with message_span(message, group=self.app.conf.id, only_traced=True) as span:
            self.on_heartbeat(batch, heartbeat, message.partition)
        if span.get_span_context().is_valid:
            batch.traced[heartbeat.camera_id] = span

    def stored_state(self, camera_id: str) -> CameraState | None:
        """The camera's state as the table holds it (decoded once, then kept), or None."""
        state = self.states.get(camera_id)
        if state is None:
            data = self.table.get(camera_id)
            if data is None:
                return None
            state = self.states[camera_id] = self.monitor.load(camera_id, self.encoder.decode(data))
        return state

    async def _open_routes(self) -> None:
        """A new generation: a barrier record to each owned camera partition of by-camera, so
        batches are applied here only once what was forwarded there before has been read."""
        self.routes.reset(self._active_partitions())
        pending = [(partition, await send_record(self.app, self.by_camera_name, BARRIER_KEY, b"",
                                                 partition=partition))
                   for partition in sorted(self.routes.owned)]
        for partition, future in pending:
            self.routes.barrier_sent(partition, (await future).offset)

    # The loop is written out on purpose (a call per heartbeat costs more than most of its steps).
    async def on_edge_batch(self, batch: _Batch, event: Any) -> None:  # noqa: PLR0915
        """An edge batch, decoded once (dead-lettered whole when it is no batch): each heartbeat
        checked and made a sample in one pass (a bad one dead-lettered alone, with the batch's
        offset and its index), then applied here or forwarded (routes.py)."""
        decoded = await self.decode_batch(event, BATCH_CODEC, _none_checked_there, HEARTBEATS)
        if decoded is None:
            return
        batch.contexts.append(decoded.trace_context)
        message = decoded.batch
        site_id, lanes, heard, changed = message.site_id, batch.lanes, batch.heard, batch.changed
        good = quiet = 0
        forwarded_before = batch.routed["forwarded"]
        oldest = batch.oldest
        # The loop of every heartbeat, written out: most are their camera's agent's next, quiet
        # ones, taken through the camera's `QuietLane` with no sample made (what
        # `CameraMonitor.on_next_quiet_heartbeat` does, field by field); any other goes the
        # general way (`checked_sample`, then `on_sample`). A property test holds the two equal.
        for index, heartbeat in enumerate(message.heartbeats):
            camera_id, seq, source = heartbeat.camera_id, heartbeat.seq, heartbeat.source
            fps, configured_fps = heartbeat.fps, heartbeat.configured_fps
            packet_loss, storage_free = heartbeat.packet_loss_percent, heartbeat.storage_free_percent
            flags = heartbeat.tamper_flags
            # `validate_heartbeat`'s condition, as `checked_sample` writes it, and the batch's site.
            if not (camera_id and seq and heartbeat.HasField("observed_time") and source in SOURCES_OR_NONE
                    and 0.0 <= fps < math.inf and 0.0 <= configured_fps < math.inf
                    and 0.0 <= packet_loss <= 100.0 and 0.0 <= storage_free <= 100.0
                    and 0.0 <= heartbeat.probe_latency_ms < math.inf
                    and (not flags or all(f in TAMPER_NAMES for f in flags))
                    and heartbeat.site_id == site_id):
                await self._dead_letter_heartbeat(decoded.record, index, message, heartbeat)
                continue
            good += 1
            lane = lanes.get(camera_id)
            if lane is None:
                lane = self._lane_or_route(batch, heartbeat)
                if lane is None:  # forwarded, or applied the general way
                    continue
            stamp = heartbeat.observed_time
            at = stamp.seconds + stamp.nanos / 1e9
            health, cursor = lane.health, lane.cursor
            # Neither is None while the camera has a lane (`CameraMonitor.quiet_lane`).
            last: float = health.last_seen  # type: ignore[assignment]
            last_seq: int = cursor.last_seq  # type: ignore[assignment]
            expected = lane.expected_fps or configured_fps
            if not (seq == last_seq + 1 and (source == AGENT or not source) and not flags
                    and heartbeat.recording and at - last <= lane.tolerance_s
                    and packet_loss <= lane.packet_loss_max and storage_free >= lane.storage_min_free
                    and (expected <= 0 or fps >= lane.fps_min_ratio * expected)):
                self.on_sample(batch, _checked(heartbeat), lane.partition)  # drops the lane
                continue
            if not lane.armed:
                lane.arm()
                heard.add(camera_id)
                changed.add(camera_id)
            if at > last:
                health.last_seen = at
            meta = lane.meta  # CameraMonitor._update_meta of an agent heartbeat of this site
            if site_id:
                meta.site_id = site_id
            name = heartbeat.name
            if name:
                meta.name = name
            if heartbeat.HasField("location"):
                location = heartbeat.location
                meta.latitude, meta.longitude = location.latitude, location.longitude
            meta.fps, meta.configured_fps, meta.recording, meta.agent_seq = fps, configured_fps, True, seq
            cursor.last_seq = seq  # as SeqCursor.accept takes a next-in-line event
            newest = cursor.newest_at
            if newest is None or at > newest:
                cursor.newest_at = at
            quiet += 1
            oldest = min(oldest, at)
        batch.quiet += quiet
        batch.oldest = oldest
        batch.routed["direct"] += good - (batch.routed["forwarded"] - forwarded_before)
        if good:
            EVENTS_CONSUMED.labels(self.service, self.batches_name, "ok").inc(good)
        if good < len(message.heartbeats):
            EVENTS_CONSUMED.labels(self.service, self.batches_name, "dead_letter").inc(
                len(message.heartbeats) - good)

    def _lane_or_route(self, batch: _Batch, heartbeat: camera_pb2.CameraHeartbeat) -> QuietLane | None:
        """A valid edge-batch heartbeat of a camera without a lane in this batch: forwarded
        when its partition is not applied here (routes.py), else its camera's new lane, to take
        it the short way, or None once it was applied the general way (no lane for the camera)."""
        camera_id = heartbeat.camera_id
        partition = self.partition_of(camera_id)
        if not self.routes.direct(partition):
            self.routes.forwarded(partition, _checked(heartbeat))
            batch.forwards.setdefault(partition, []).append(heartbeat)
            batch.routed["forwarded"] += 1
            return None
        state = batch.state(camera_id)
        state.meta.partition = partition
        lane = self.monitor.quiet_lane(state, partition)
        if lane is None:
            self.on_sample(batch, _checked(heartbeat), partition)
            return None
        batch.lanes[camera_id] = lane  # a lane's partition stays direct for the batch
        return lane

    async def _dead_letter_heartbeat(self, record: Any, index: int, message: camera_pb2.CameraHeartbeatBatch,
                                     heartbeat: camera_pb2.CameraHeartbeat) -> None:
        """A bad heartbeat of an edge batch to the dead-letter topic alone, saying why."""
        try:
            HEARTBEATS.check(heartbeat)
            problem = heartbeat_of_batch_site(message, heartbeat) or "invalid heartbeat"
        except DecodeError as exc:
            problem = str(exc)
        await publish_item_dead_letter(self.dlq, record, index, heartbeat, problem)

    async def _forward(self, forwards: Mapping[int, list[camera_pb2.CameraHeartbeat]]) -> list[Any]:
        """One by-camera message per camera partition (chunked), marked with this generation's
        token; the acks' futures, awaited before Faust acks the batches taken."""
        if not forwards:
            return []
        headers = [*inject_headers(), (FORWARDED_BY_HEADER, self.routes.token)]
        pending = []
        for partition, heartbeats in forwards.items():
            for start in range(0, len(heartbeats), FORWARD_CHUNK):
                value = camera_pb2.CameraHeartbeatBatch(
                    heartbeats=heartbeats[start:start + FORWARD_CHUNK]).SerializeToString()
                pending.append(await send_record(self.app, self.by_camera_name, None, value,
                                                 headers=headers, partition=partition))
        return pending

    def on_heartbeat_batch(self, batch: _Batch, event: Any) -> None:
        """A by-camera message: heartbeats forwarded to this camera partition, or a barrier
        (then what this worker held for the partition is applied: see routes.py)."""
        message = event.message
        for sample in self.routes.read(message.partition, message.offset):
            self.on_sample(batch, sample, message.partition)
        headers = headers_of(message)
        token = header_value(headers, FORWARDED_BY_HEADER)
        if event.key == BARRIER_KEY or self.routes.skips(message.partition, token):
            return
        try:
            heartbeats = camera_pb2.CameraHeartbeatBatch.FromString(event.value).heartbeats
        except Exception:  # internal topic, written by `_forward`: nothing to keep
            log.exception("malformed batch at %s[%d]@%d", event.message.topic, event.message.partition,
                          event.message.offset)
            return
        batch.contexts.append(trace_context_of(headers))
        for heartbeat in heartbeats:
            self.on_sample(batch, sample_from_heartbeat(heartbeat), message.partition)

    def on_heartbeat(self, batch: _Batch, heartbeat: camera_pb2.CameraHeartbeat, partition: int) -> None:
        self.on_sample(batch, sample_from_heartbeat(heartbeat), partition)

    def on_sample(self, batch: _Batch, sample: Sample, partition: int) -> None:
        """A heartbeat applied to its camera's state: most the short way (nothing to publish)."""
        camera_id = sample.camera_id
        batch.lanes.pop(camera_id, None)  # the state may change in ways the lane does not know
        batch.general.add(camera_id)
        state = batch.state(camera_id)
        state.meta.partition = partition
        batch.heard.add(camera_id)
        if self.monitor.on_next_quiet_heartbeat(state, sample):
            batch.took_quietly(sample)
        else:
            batch.took(sample, self.monitor.on_heartbeat(state, sample))

    def on_tick(self, batch: _Batch, key: bytes | None, value: bytes | None, partition: int) -> None:
        try:
            camera_id = (key or b"").decode("utf-8")
            tick = json.loads(value or b"")
            holds = self.clock.came_back(tick)
            if tick.get("probe"):
                return  # only there to show a stall (see watch)
            now, refresh = float(tick["now"]), bool(tick["refresh"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring a malformed tick: %s", exc)  # internal topic: nothing to keep
            return
        if not batch.known(camera_id):
            return
        batch.lanes.pop(camera_id, None)
        batch.general.add(camera_id)
        state = batch.state(camera_id)
        if not holds and state.health.last_seen is not None:
            # Computed before the worker stalled: neither a silence nor a gap to give up.
            now = min(now, state.health.last_seen)
        outcome = self.monitor.on_tick(state, now, refresh)
        batch.effects.append(outcome)
        if outcome.changed:
            batch.changed.add(camera_id)

    async def _publish(self, outcomes: Sequence[MonitorEffects], states: Mapping[str, CameraState],
                       traced: dict[str, Any] | None = None) -> None:
        """Sends every incident, then each camera's newest status of the batch (completed with
        its availability from the camera's state in `states`), and waits until the broker has
        them all. The status topic is compacted by camera: a status the same batch supersedes
        would only be compacted away (one message per camera per batch, not one per
        heartbeat)."""
        pending = []
        headers = inject_headers()
        newest: dict[str, Any] = {}
        for outcome in outcomes:
            for incident in outcome.incidents:
                pending.append(await send_record(self.app, self.incidents_name, incident.camera_id.encode(),
                                                 encode_incident(incident), headers=headers))
            for status in outcome.statuses:
                newest.pop(status.camera_id, None)  # re-inserted: the order of the newest ones
                newest[status.camera_id] = status
        for camera_id, deferred in newest.items():
            status = newest[camera_id] = self.monitor.completed(states[camera_id], deferred)
            span = (traced or {}).get(camera_id)
            if span is None:
                pending.append(await send_record(self.app, self.status_name, camera_id.encode(),
                                                 encode_status(status), headers=headers))
                continue
            with producer_span(self.status_name, camera_id, parent=span) as own:
                pending.append(await send_record(self.app, self.status_name, camera_id.encode(),
                                                 encode_status(status), headers=own))
        for future in pending:
            await future
        for outcome in outcomes:
            metrics.record_incidents(outcome.incidents)
        for status in newest.values():
            metrics.record_status(status)

    # --- the silence timer ---------------------------------------------------------------

    async def watch(self) -> None:
        """Sends ticks for silent cameras, overdue seq gaps and the status cadence; sets gauges.

        Looks only at the cameras whose silence deadline passed and those waiting on a gap (and
        at every owned camera once per status interval, to refresh each one's status)."""
        if not assigned_and_recovered(self.app):
            return
        if self.app.consumer_generation_id != self._watched_generation:
            self._watched_generation = self.app.consumer_generation_id
            self._watch_all()
        mono = time.monotonic()
        refresh = mono >= self._next_refresh
        if refresh:
            self._next_refresh = mono + self.config.status_interval_s
        due = self.silences.pop_due(mono)
        actives = self._active_partitions()
        for camera_id in list(self.fleet) if refresh else dict.fromkeys([*due, *self.gapped]):
            state = self.stored_state(camera_id)
            if state is None or state.meta.partition not in actives or state.health.last_seen is None:
                continue
            now = self.clock.now_for(camera_id, state.health.last_seen)
            silent_or_gap = self.monitor.needs_tick(state, now)
            if silent_or_gap:  # looked at again next time, until the tick has been applied
                self.silences.set(camera_id, mono + self.config.silence_check_interval_s)
            else:  # not silent after all (a stall counted every camera as heard): look again then
                self.silences.set(camera_id, self.clock.silent_after(camera_id,
                                                                     state.health.heartbeat_tolerance_s))
            if refresh or silent_or_gap:
                metrics.TICKS.labels("refresh" if refresh else "silence_or_gap").inc()
                tick = {"now": now, "refresh": refresh} | self.clock.stamp()
                await send_record(self.app, self.ticks_name, camera_id.encode(), json.dumps(tick).encode(),
                                  partition=state.meta.partition)
        for partition in sorted(actives):  # a probe per partition: a stall shows when none is due
            probe = json.dumps({"probe": True} | self.clock.stamp()).encode()
            await send_record(self.app, self.ticks_name, b"", probe, partition=partition)
        if self._fleet_changed:
            self._fleet_changed = False
            metrics.set_fleet(self.fleet.values())

    def _watch_all(self) -> None:
        """After a rebalance: every owned camera of the table, once."""
        self.fleet.clear()
        self.silences.clear()
        self.gapped.clear()
        self._fleet_changed = True
        actives = self._active_partitions()
        for camera_id in list(self.table.keys()):
            state = self.stored_state(camera_id)
            if state is not None and state.meta.partition in actives:
                self._watch(camera_id, state)

    def _watch(self, camera_id: str, state: CameraState) -> None:
        """Keeps what the timer needs of a camera whose state a batch touched."""
        health = state.health
        if health.last_seen is None:
            return
        entry = (state.meta.site_id, health.health, bool(state.incidents.open_id))
        if self.fleet.get(camera_id) != entry:
            self.fleet[camera_id] = entry
            self._fleet_changed = True
        self.silences.set(camera_id, self.clock.silent_after(camera_id, health.heartbeat_tolerance_s))
        if any(cursor.pending for cursor in state.cursors.values()):
            self.gapped.add(camera_id)
        else:
            self.gapped.discard(camera_id)

    def _active_partitions(self) -> set[int]:
        return {tp.partition for tp in self.app.assignor.assigned_actives()
                if tp.topic == self.heartbeats_name}


def describe(settings: PlatformSettings, config: ServiceConfig) -> Sequence[str]:
    """Startup lines for the log: what the worker reads and how it is tuned."""
    t = config.thresholds.defaults
    return [
        f"camera-health: group {settings.group_id}, topics prefix {settings.topic_prefix!r}",
        f"heartbeat tolerance {t.heartbeat_tolerance_s:g}s, incident hold {t.incident_resolve_hold_s:g}s, "
        f"silence check every {config.silence_check_interval_s:g}s, "
        f"status every {config.status_interval_s:g}s, "
        f"{len(config.thresholds.per_camera)} camera(s) with own thresholds",
    ]
