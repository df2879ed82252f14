"""The edge-batch loop's short way (`CameraHealthService.on_edge_batch` taking quiet heartbeats
through each camera's `QuietLane`, no sample made, and their records filled into the camera's
`StateEncoder` template) holds equal to the general way (every heartbeat `checked_sample`d and
given to `on_sample`, every record encoded in full), property-tested on the service itself
with the broker faked: the same records sent (statuses, incidents, changelog) in the same order,
the same dead letters (index and reason), the same states. Edge batches are mixed with single
heartbeats of the same cameras, which take the lanes away mid-batch."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from camera_health.adapters import streams
from camera_health.adapters.messages import TAMPER_FLAGS, checked_sample
from camera_health.adapters.streams import CameraHealthService
from camera_health.config import ServiceConfig, ThresholdBook, Thresholds
from camera_health.core.domain import CameraMonitor
from camera_health.core.model import AGENT, PROBE
from smartcity.codec import to_timestamp
from smartcity.settings import PlatformSettings
from smartcity.v1 import camera_pb2, common_pb2

SITE = "site-1"
CAMERAS = ("cam-a", "cam-b", "cam-c")
# Tolerances short against the steps' 10 s, so checks fire and recover within a plan.
BOOK = ThresholdBook(Thresholds().with_overrides(
    {"fps_tolerance_s": 20.0, "fps_recovery_s": 10.0, "packet_loss_tolerance_s": 15.0,
     "heartbeat_tolerance_s": 30.0, "incident_resolve_hold_s": 25.0}, "test"))


def mostly(passing: Any, *others: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from([passing] * 24 + list(others))  # runs of quiet heartbeats are common


# A heartbeat as a step from the previous one of its camera and source; a few are bad (the
# dead-letter topic's), a few of another site.
heartbeat_step = st.fixed_dictionaries({
    "camera": st.sampled_from(CAMERAS),
    "seq_step": mostly(1, 2, 0, -1),
    "dt": mostly(10.0, 29.0, 31.0, 45.0, -3.0),
    "source": mostly(AGENT, PROBE, "", "drone"),
    "fps": mostly(25.0, 19.9, 12.0, math.nan, -1.0),
    "configured_fps": mostly(25.0, 0.0),
    "packet_loss_percent": mostly(0.0, 5.1, 100.5),
    "storage_free_percent": mostly(60.0, 9.9),
    "recording": mostly(True, False),
    "tamper_flags": mostly((), (TAMPER_FLAGS["covered"],), (99,)),
    "site": mostly(SITE, "site-2"),
    "name": mostly("", "Gerbang"),
    "location": mostly(None, (-7.39, 109.36)),
    "single": mostly(False, True),  # sent alone on camera.heartbeats.v1, not in a batch
})
plans = st.tuples(st.lists(heartbeat_step, min_size=1, max_size=150),
                  st.lists(st.integers(1, 12), min_size=1, max_size=20),  # heartbeats per batch message
                  st.lists(st.integers(1, 4), min_size=1, max_size=20))  # messages per event batch


def build(plan: list[dict[str, Any]]) -> list[tuple[dict[str, Any], camera_pb2.CameraHeartbeat]]:
    seqs: dict[tuple[str, str], int] = {}
    ats = dict.fromkeys(CAMERAS, 1_000_000.0)
    out = []
    for step in plan:
        camera, source = step["camera"], step["source"]
        seq = seqs[camera, source] = max(0, seqs.get((camera, source), 0) + step["seq_step"])
        ats[camera] += step["dt"]
        hb = camera_pb2.CameraHeartbeat(
            camera_id=camera, seq=seq, observed_time=to_timestamp(ats[camera]), source=source,
            site_id=step["site"], name=step["name"], fps=step["fps"], configured_fps=step["configured_fps"],
            packet_loss_percent=step["packet_loss_percent"],
            storage_free_percent=step["storage_free_percent"], recording=step["recording"],
            tamper_flags=list(step["tamper_flags"]))
        if step["location"] is not None:
            latitude, longitude = step["location"]
            hb.location.CopyFrom(common_pb2.GeoPoint(latitude=latitude, longitude=longitude))
        out.append((step, hb))
    return out


@pytest.fixture(scope="module")
def service() -> Iterator[CameraHealthService]:
    yield CameraHealthService(PlatformSettings.from_env("camera-health"), ServiceConfig.from_env())


class FakeWriter:
    """The table writer, its flush a changelog record per key as the real one sends."""

    def __init__(self, table: dict[str, bytes]) -> None:
        self.table, self.partition, self._dirty = table, -1, {}  # type: dict[str, bytes], int, dict[str, Any]

    def __setitem__(self, key: str, value: bytes) -> None:
        self._dirty[key] = (self.partition, value)

    async def flush(self) -> int:
        for key, (partition, value) in self._dirty.items():
            self.table[key] = value
            await streams.send_record(None, "changelog", key.encode(), value,  # type: ignore[attr-defined]
                                      partition=partition)
        count = len(self._dirty)
        self._dirty.clear()
        return count


def events_of(service: CameraHealthService, beats: list[Any], sizes: list[int]) -> list[Any]:
    """The heartbeats as the agent's events: edge batches of `sizes`, and the single ones alone."""
    events: list[Any] = []
    pending: list[camera_pb2.CameraHeartbeat] = []
    offset = 0

    def event(topic: str, key: bytes, value: bytes) -> Any:
        nonlocal offset
        offset += 1
        message = SimpleNamespace(topic=topic, partition=0, offset=offset, headers=[], key=key, value=value,
                                  timestamp=0)
        return SimpleNamespace(key=key, value=value, message=message, headers={})

    def close() -> None:
        if pending:
            batch = camera_pb2.CameraHeartbeatBatch(site_id=SITE, heartbeats=pending)
            events.append(event(service.batches_name, SITE.encode(), batch.SerializeToString()))
            pending.clear()

    for step, hb in beats:
        if step["single"] and checked_sample(hb) is not None and hb.site_id == SITE:  # a bad one: in a batch
            close()
            events.append(event(service.heartbeats_name, hb.camera_id.encode(), hb.SerializeToString()))
            continue
        pending.append(hb)
        if len(pending) >= sizes[len(events) % len(sizes)]:
            close()
    close()
    return events


def run(  # noqa: PLR0917
        service: CameraHealthService, monkeypatch: pytest.MonkeyPatch, beats: list[Any], sizes: list[int],
        takes: list[int], short_way: bool) -> tuple[list[Any], list[Any], dict[str, bytes]]:
    """Feeds the heartbeats through `_process` (batches of `sizes`, events taken `takes` at a
    time); what was sent, what was dead-lettered, and the table at the end."""
    sent: list[Any] = []
    dead: list[Any] = []

    async def send_record(app: Any, topic: str, key: bytes | None, value: bytes | None,
                          **options: Any) -> Any:
        sent.append((topic, key, value, options.get("partition")))
        future = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(offset=0))
        return future

    async def dead_letter(publisher: Any, record: Any, index: int, item: Any, problem: str) -> None:
        dead.append((record.offset, index, problem))

    monkeypatch.setattr(streams, "send_record", send_record)
    monkeypatch.setattr(streams, "publish_item_dead_letter", dead_letter)
    monitor = CameraMonitor(BOOK, defer_availability=True)
    if not short_way:  # every heartbeat the general way, every record encoded in full
        monkeypatch.setattr(monitor, "quiet_lane", lambda state, partition: None)
        full = service.encoder.encode
        monkeypatch.setattr(service.encoder, "encode", lambda state, quiet=False: full(state))
    table: dict[str, bytes] = {}
    service.monitor, service.table, service.writer = monitor, table, FakeWriter(table)  # type: ignore[assignment]
    service.states.clear()
    service.encoder.forget()
    service._generation = service.app.consumer_generation_id
    every = range(streams.partitions())
    service.routes.reset(every)
    for partition in every:
        service.routes.barrier_sent(partition, 0)
        service.routes.read(partition, 0)
    events = events_of(service, beats, sizes)

    async def feed() -> None:
        start = 0
        while start < len(events):
            take = takes[start % len(takes)]
            await service._process(events[start:start + take])
            start += take

    asyncio.run(feed())
    return sent, dead, table


@settings(max_examples=300, deadline=None)
@given(plans)
def test_the_edge_batch_short_way_sends_and_keeps_what_the_general_way_does(
        service: CameraHealthService, plan: tuple[list[dict[str, Any]], list[int], list[int]]) -> None:
    steps, sizes, takes = plan
    beats = build(steps)
    with pytest.MonkeyPatch.context() as monkeypatch:
        general = run(service, monkeypatch, beats, sizes, takes, short_way=False)
    with pytest.MonkeyPatch.context() as monkeypatch:
        short = run(service, monkeypatch, beats, sizes, takes, short_way=True)
    assert short[1] == general[1]  # the same dead letters
    assert short[2] == general[2]  # the same states
    assert short[0] == general[0]  # the same records, in order


def test_most_heartbeats_of_a_healthy_camera_take_the_short_way(service: CameraHealthService) -> None:
    steps = [{"camera": "cam-a", "seq_step": 1, "dt": 10.0, "source": AGENT, "fps": 25.0,
              "configured_fps": 25.0, "packet_loss_percent": 0.0, "storage_free_percent": 60.0,
              "recording": True, "tamper_flags": (), "site": SITE, "name": "", "location": None,
              "single": False}] * 50
    taken: list[int] = []
    original = CameraHealthService.on_sample

    def on_sample(self: CameraHealthService, batch: Any, sample: Any, partition: int) -> None:
        taken.append(sample.seq)
        original(self, batch, sample, partition)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(CameraHealthService, "on_sample", on_sample)
        run(service, monkeypatch, build(steps), [50], [1], short_way=True)
    assert taken == [1]  # the first (a new camera), no more
