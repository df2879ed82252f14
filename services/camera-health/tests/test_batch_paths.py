"""The edge-batch hot path's shortcuts hold equal to the general path (property tests):

(`CameraMonitor.on_next_quiet_heartbeat` against the full path: test_short_paths.py.)

- `checked_sample` (check and sample in one pass) is None exactly when `validate_heartbeat`
  refuses a heartbeat, else the sample `sample_from_heartbeat` makes;
- `CameraRoutes`: whatever the interleaving of batches, by-camera records, rebalances and
  crashes, each camera's heartbeats reach its state in their batch partition's order, each
  once, and none is lost.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from camera_health.adapters.messages import checked_sample, sample_from_heartbeat, validate_heartbeat
from camera_health.adapters.routes import CameraRoutes
from smartcity.codec import to_timestamp
from smartcity.v1 import camera_pb2, common_pb2

# --- checked_sample ----------------------------------------------------------------------------

numbers = st.sampled_from([0.0, 0.5, 25.0, 99.9, 100.0, 100.1, 250.0, -0.1, math.nan, math.inf, -math.inf])
raw_heartbeat = st.fixed_dictionaries({
    "camera_id": st.sampled_from(["cam-1", ""]),
    "site_id": st.sampled_from(["site-1", ""]),
    "name": st.sampled_from(["Gate", ""]),
    "seq": st.sampled_from([0, 1, 7]),
    "observed_time": st.sampled_from([None, 0.0, 1_000_000.25, 1_700_000_000.123456]),
    "source": st.sampled_from(["", "agent", "probe", "drone"]),
    "location": st.sampled_from([None, (-7.4, 109.3), (0.0, 0.0)]),
    "fps": numbers, "configured_fps": numbers, "packet_loss_percent": numbers,
    "storage_free_percent": numbers, "probe_latency_ms": numbers,
    "bitrate_kbps": st.sampled_from([0, 4000]), "dropped_frames": st.sampled_from([0, 3]),
    "recording": st.booleans(), "reachable": st.booleans(), "frames_decoded": st.sampled_from([0, 40]),
    "tamper_flags": st.lists(st.sampled_from([1, 2, 3, 6, 99]), max_size=3),
})


def build(fields: dict[str, Any]) -> camera_pb2.CameraHeartbeat:
    values = dict(fields)
    at, location = values.pop("observed_time"), values.pop("location")
    hb = camera_pb2.CameraHeartbeat(**values)
    if at is not None:
        hb.observed_time.CopyFrom(to_timestamp(at))
    if location is not None:
        hb.location.CopyFrom(common_pb2.GeoPoint(latitude=location[0], longitude=location[1]))
    # Through the wire, as a batch's heartbeats come (an unknown enum value stays a number).
    return camera_pb2.CameraHeartbeat.FromString(hb.SerializeToString())


def refused(hb: camera_pb2.CameraHeartbeat) -> bool:
    try:
        validate_heartbeat(hb)
    except ValueError:
        return True
    return False


@settings(max_examples=500, deadline=None)
@given(raw_heartbeat)
def test_a_sample_checked_in_one_pass_is_the_checked_then_converted_one(fields: dict[str, Any]) -> None:
    hb = build(fields)
    sample = checked_sample(hb)
    if refused(hb):
        assert sample is None
    else:
        expected = sample_from_heartbeat(hb)
        assert sample is not None
        # NaN never passes the checks, so plain equality is exact here.
        assert sample == expected and type(sample) is type(expected)


# --- CameraRoutes ------------------------------------------------------------------------------

class RoutedWorld:
    """One worker's agent over edge-batch partitions and by-camera partitions, as the service
    drives `CameraRoutes`: heartbeats (camera, n) in, applied ones recorded per camera. A
    rebalance opens a new generation (barriers first, what was held forgotten); forwards of
    another worker (a previous owner of the batch partition) may already wait on by-camera."""

    PARTITIONS = (0, 1, 2)

    def __init__(self) -> None:
        self.routes: CameraRoutes[tuple[str, int]] = CameraRoutes()
        self.edge: deque[tuple[str, int]] = deque()  # one batch partition, heartbeats in order
        self.by_camera: dict[int, list[tuple[bytes | None, bytes | None, tuple[str, int] | None]]] = {
            q: [] for q in self.PARTITIONS}  # (key, token, heartbeat)
        self.read_to = dict.fromkeys(self.PARTITIONS, 0)  # next by-camera offset to read
        self.applied: dict[str, list[int]] = {}
        self.owned: frozenset[int] = frozenset(self.PARTITIONS)

    @staticmethod
    def partition_of(camera: str) -> int:
        return int(camera[-1]) % 3

    def open(self, owned: frozenset[int]) -> None:
        self.owned = owned
        self.routes.reset(owned)
        for q in sorted(owned):
            self.by_camera[q].append((b"barrier", None, None))
            self.routes.barrier_sent(q, len(self.by_camera[q]) - 1)

    def apply(self, heartbeat: tuple[str, int]) -> None:
        """As the camera's seq cursor takes it: one already applied is a duplicate (harmless);
        one that skips ahead would have overtaken an older one."""
        camera, n = heartbeat
        applied = self.applied.setdefault(camera, [])
        if applied and n <= applied[-1]:
            return
        assert n == (applied[-1] if applied else 0) + 1, f"{camera} #{n} overtook #{len(applied) + 1}"
        applied.append(n)

    def take_edge(self) -> None:
        """The next edge heartbeat: applied here or forwarded (and acked, then committed)."""
        heartbeat = self.edge.popleft()
        q = self.partition_of(heartbeat[0])
        if self.routes.direct(q):
            self.apply(heartbeat)
        else:
            self.routes.forwarded(q, heartbeat)
            self.by_camera[q].append((None, self.routes.token, heartbeat))

    def unread(self, q: int) -> bool:
        return self.read_to[q] < len(self.by_camera[q])

    def read_by_camera(self, q: int) -> None:
        """The agent reads by-camera q's next record (also of a partition the routes do not
        count as owned: the assignment they were opened with may have been incomplete)."""
        offset = self.read_to[q]
        key, token, heartbeat = self.by_camera[q][offset]
        self.read_to[q] = offset + 1
        for held in self.routes.read(q, offset):
            self.apply(held)
        if key == b"barrier" or self.routes.skips(q, token):
            return
        assert heartbeat is not None
        self.apply(heartbeat)


action = st.one_of(st.just(("edge",)), st.tuples(st.just("read"), st.sampled_from(RoutedWorld.PARTITIONS)),
                   st.tuples(st.just("rebalance"), st.frozensets(st.sampled_from(RoutedWorld.PARTITIONS))))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["cam-0", "cam-1", "cam-2", "cam-4"]), st.integers(0, 2)),
                min_size=1, max_size=40),
       st.lists(action, max_size=120))
def test_routed_heartbeats_reach_each_camera_in_order_once(foreign: list[tuple[str, int]],
                                                          actions: list[tuple[Any, ...]]) -> None:
    world = RoutedWorld()
    counters: dict[str, int] = {}
    # What a previous owner of the batch partition forwarded before this worker's first
    # generation: the cameras' oldest heartbeats, waiting on by-camera.
    for camera, _ in foreign:
        counters[camera] = counters.get(camera, 0) + 1
        world.by_camera[world.partition_of(camera)].append((None, b"another", (camera, counters[camera])))
    for n in range(30):  # then the batch partition's own heartbeats, newer
        camera = ["cam-0", "cam-1", "cam-2", "cam-4"][n % 4]
        counters[camera] = counters.get(camera, 0) + 1
        world.edge.append((camera, counters[camera]))
    world.open(frozenset(RoutedWorld.PARTITIONS))
    for step in actions:
        if step[0] == "edge" and world.edge:
            world.take_edge()
        elif step[0] == "read" and world.unread(step[1]):  # owned or not (an assignment seen late)
            world.read_by_camera(step[1])
        elif step[0] == "rebalance":
            world.open(step[1])
    # Drain: every partition owned, the rest read.
    world.open(frozenset(RoutedWorld.PARTITIONS))
    while world.edge or any(world.unread(q) for q in RoutedWorld.PARTITIONS):
        for q in RoutedWorld.PARTITIONS:
            while world.unread(q):
                world.read_by_camera(q)
        if world.edge:
            world.take_edge()
    for camera, count in counters.items():
        assert world.applied.get(camera) == list(range(1, count + 1)), camera
