"""Faust wiring of camera-health: a thin adapter around `domain.CameraMonitor`.

    in    camera.heartbeats.v1                       CameraHeartbeat, key camera_id
          <app id>-ticks (internal, co-partitioned)   silence-timer ticks, key camera_id
    out   camera.status.v1 (compacted)               CameraStatus on changes and every
                                                      CAMERA_STATUS_INTERVAL_S
          camera.incidents.v1                        CameraIncident opened / resolved
          camera.heartbeats.v1.dlq                   what could not be decoded or validated
    table cameras (changelog <app id>-cameras-changelog): the CameraState of each camera

One agent reads heartbeats and ticks together, so a camera's state only ever changes in its
partition's order, one event at a time: the timer never races the stream. The timer itself
only reads the table and sends ticks (Faust tables can only be changed from a stream).

Crash safety (at-least-once): an event's outputs are sent and acknowledged *before* its new
state is put in the table, and Faust flushes the changelog before it commits offsets. After a
crash an event is either reprocessed (its outputs are sent again: same incident ids, statuses
compacted by key) or already reflected in the recovered state (its outputs went out before).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import faust
from opentelemetry import trace

from camera_health.adapters import metrics
from camera_health.adapters.messages import HEARTBEATS, encode_incident, encode_status, sample_from_heartbeat
from camera_health.config import ServiceConfig
from camera_health.core.clock import ReceiptClock
from camera_health.core.domain import CameraMonitor, MonitorEffects
from smartcity import topic_names
from smartcity.settings import PlatformSettings
from smartcity.streams import StreamService, assigned_and_recovered
from smartcity.topics import load_catalogue
from smartcity.tracing import inject_headers
from smartcity.v1 import camera_pb2

log = logging.getLogger(__name__)
tracer = trace.get_tracer("camera-health")

SERVICE = "camera-health"
TICKS_RETENTION_S = 3600.0  # ticks are only useful for seconds


def partitions() -> int:
    return load_catalogue()[topic_names.CAMERA_HEARTBEATS].partitions


def key_matches_camera(key: str, heartbeat: camera_pb2.CameraHeartbeat) -> str | None:
    """A heartbeat keyed by another camera would land in the wrong partition's state."""
    if key != heartbeat.camera_id:
        return f"key {key!r} does not match camera_id {heartbeat.camera_id!r}"
    return None


class CameraHealthService(StreamService):
    """The app, its topics, the cameras table, one agent (heartbeats + ticks) and the timer."""

    def __init__(self, settings: PlatformSettings, config: ServiceConfig) -> None:
        super().__init__(settings, broker_session_timeout=config.session_timeout_s,
                         broker_heartbeat_interval=min(3.0, config.session_timeout_s / 4))
        self.config = config
        self.monitor = CameraMonitor(config.thresholds, config.reorder_window_s, config.reorder_max_pending)
        self.clock = ReceiptClock()
        # Topics. The ticks are internal and co-partitioned with the heartbeats; one agent reads
        # both through one channel (so `serve` must create the ticks topic first: merged).
        self.heartbeats_in = self.catalogue_topic(topic_names.CAMERA_HEARTBEATS)
        self.ticks = self.internal_topic("ticks", partitions(), merged=True, deleting=True,
                                         retention=TICKS_RETENTION_S)
        self.heartbeats_name = self.heartbeats_in.get_topic_name()
        self.ticks_name = self.ticks.get_topic_name()
        self.source = self.merged_channel(self.heartbeats_name, self.ticks_name)
        self.status_out = self.catalogue_topic(topic_names.CAMERA_STATUS)
        self.incidents_out = self.catalogue_topic(topic_names.CAMERA_INCIDENTS)
        # Tables. Keys and values are JSON (Faust's default for untyped tables): camera_id -> state.
        self.table = self.app.Table("cameras", partitions=partitions())
        # Agents and timers.
        self.agent(self.source, self.process, "camera-health")
        self.timer(config.silence_check_interval_s, self.watch, "camera-health-watch")
        self._next_refresh = time.monotonic() + config.status_interval_s

    # --- the agent -----------------------------------------------------------------------

    async def process(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            if event.message.topic == self.ticks_name:
                await self.on_tick(event.key, event.value)
            else:
                await self.on_heartbeat(event)

    async def on_heartbeat(self, event: Any) -> None:
        item = await self.decode(event, HEARTBEATS, key_matches_camera)
        if item is None:
            return
        with tracer.start_as_current_span("camera-health.heartbeat", context=item.trace_context):
            sample = sample_from_heartbeat(item.value)
            state = self.monitor.load(sample.camera_id, self.table.get(sample.camera_id))
            state.meta.partition = item.record.partition
            outcome = self.monitor.on_heartbeat(state, sample)
            metrics.EVENTS.labels(sample.source, outcome.arrival).inc()
            await self._publish(outcome)
            if outcome.changed:
                self.table[sample.camera_id] = self.monitor.dump(state)
        self.clock.heard(sample.camera_id)
        self.observe_latency(item.record.topic, sample.at)

    async def on_tick(self, key: bytes | None, value: bytes | None) -> None:
        try:
            camera_id = (key or b"").decode("utf-8")
            tick = json.loads(value or b"")
            now, refresh = float(tick["now"]), bool(tick["refresh"])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed tick: %s", exc)  # internal topic: nothing to keep
            return
        data = self.table.get(camera_id)
        if data is None:
            return
        state = self.monitor.load(camera_id, data)
        outcome = self.monitor.on_tick(state, now, refresh)
        await self._publish(outcome)
        if outcome.changed:
            self.table[camera_id] = self.monitor.dump(state)

    async def _publish(self, outcome: MonitorEffects) -> None:
        """Sends incidents then statuses, and waits until the broker has them all."""
        pending = []
        headers = inject_headers()
        for incident in outcome.incidents:
            pending.append(await self.incidents_out.send(key=incident.camera_id.encode(),
                                                         value=encode_incident(incident), headers=headers))
        for status in outcome.statuses:
            pending.append(await self.status_out.send(key=status.camera_id.encode(),
                                                      value=encode_status(status), headers=headers))
        for future in pending:
            await future
        metrics.record_incidents(outcome.incidents)
        for status in outcome.statuses:
            metrics.record_status(status)

    # --- the silence timer ---------------------------------------------------------------

    async def watch(self) -> None:
        """Sends ticks for silent cameras, overdue seq gaps and the status cadence; sets gauges."""
        if not assigned_and_recovered(self.app):
            return
        actives = self._active_partitions()
        refresh = time.monotonic() >= self._next_refresh
        if refresh:
            self._next_refresh = time.monotonic() + self.config.status_interval_s
        fleet = []
        for camera_id, data in list(self.table.items()):
            state = self.monitor.load(camera_id, data)
            if state.meta.partition not in actives or state.health.last_seen is None:
                continue
            fleet.append((state.meta.site_id, state.health.health, bool(state.incidents.open_id)))
            now = self.clock.now_for(camera_id, state.health.last_seen)
            due = self.monitor.needs_tick(state, now)
            if refresh or due:
                metrics.TICKS.labels("refresh" if refresh else "silence_or_gap").inc()
                await self.ticks.send(key=camera_id.encode(), partition=state.meta.partition,
                                      value=json.dumps({"now": now, "refresh": refresh}).encode())
        metrics.set_fleet(fleet)

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
