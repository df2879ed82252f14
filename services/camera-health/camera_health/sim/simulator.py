"""The camera simulator: `python -m camera_health.sim.simulator`.

Sends a CameraHeartbeat per camera of `smartcity.inventory.cameras()` (Alun-Alun's four first,
then the junction, terminal, market and tourist-site cameras) every SIM_HEARTBEAT_INTERVAL_S,
as one CameraHeartbeatBatch per site to camera.heartbeat-batches.v1 (or one message per
heartbeat to camera.heartbeats.v1 with SIM_BATCHES=false), and takes faults on POST http://SIM_CONTROL_HOST:SIM_CONTROL_PORT/faults
(see `camera_health.sim.fleet` for the commands). Runs until SIGTERM/SIGINT, or SIM_DURATION_S.

    SIM_HEARTBEAT_INTERVAL_S  seconds between heartbeats (default 10; tests and demos ~1)
    SIM_CONTROL_PORT          control endpoint port (default 9112; 0 picks a free one)
    SIM_CONTROL_HOST          interface of the control endpoint (default 127.0.0.1)
    SIM_CAMERA_COUNT          simulate N cameras: the first N of the inventory, or beyond its size
                              copies of them at copies of their sites (default 0 = all)
    SIM_SEED                  seed of the noise (default 1)
    SIM_DURATION_S            stop after this long (default 0 = run until stopped)
    SIM_BATCHES               one batch message per site (default true) or one per heartbeat
    SIM_RTSP_PORT             also answer RTSP OPTIONS/DESCRIBE on rtsp://SIM_CONTROL_HOST:port/<id>
                              (503 while a camera is offline or its stream is down), so the
                              prober has something to probe (default 0 = off)
plus KAFKA_BOOTSTRAP_SERVERS and SMARTCITY_TOPIC_PREFIX like every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from aiokafka import AIOKafkaProducer

from camera_health.sim.fleet import Fleet
from camera_health.sim.rtsp_server import start_rtsp_server
from smartcity import topic_names
from smartcity.inventory import CameraInfo, cameras, scaled_devices
from smartcity.kafka import make_producer, wait_for_broker
from smartcity.observability import configure_logging
from smartcity.settings import PlatformSettings, env_bool, env_float, env_int, env_str
from smartcity.simcontrol import ControlServer
from smartcity.topics import load_catalogue
from smartcity.v1 import camera_pb2

log = logging.getLogger("camera_health.sim.simulator")


@dataclass(frozen=True)
class SimOptions:
    interval_s: float = 10.0
    duration_s: float = 0.0
    host: str = "127.0.0.1"
    control_port: int = 9112
    rtsp_port: int = 0
    camera_count: int = 0
    seed: int = 1
    # One CameraHeartbeatBatch per site per interval (as a site's NVR would send), or one
    # message per heartbeat (SIM_BATCHES=false).
    batches: bool = True

    @classmethod
    def from_env(cls) -> SimOptions:
        return cls(env_float("SIM_HEARTBEAT_INTERVAL_S", cls.interval_s), env_float("SIM_DURATION_S", 0.0),
                   env_str("SIM_CONTROL_HOST", cls.host), env_int("SIM_CONTROL_PORT", cls.control_port),
                   env_int("SIM_RTSP_PORT", 0), env_int("SIM_CAMERA_COUNT", 0), env_int("SIM_SEED", 1),
                   env_bool("SIM_BATCHES", cls.batches))


async def run(settings: PlatformSettings, fleet: Fleet, control: ControlServer, options: SimOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if options.rtsp_port:
        await start_rtsp_server(options.host, options.rtsp_port, fleet.stream_up)
        log.info("RTSP of the simulated cameras on rtsp://%s:%d/<camera_id>", options.host, options.rtsp_port)
    await wait_for_broker(settings)
    producer = make_producer(settings)
    await producer.start()
    try:
        await _send_heartbeats(settings, fleet, producer, stop, options)
    finally:
        await producer.stop()
        control.stop()


def messages(beats: list[camera_pb2.CameraHeartbeat], batches: bool) -> list[tuple[bytes, bytes]]:
    """(key, value) to send: one batch per site keyed by site, or one heartbeat per camera."""
    if not batches:
        return [(hb.camera_id.encode(), hb.SerializeToString()) for hb in beats]
    by_site: dict[str, list[camera_pb2.CameraHeartbeat]] = {}
    for hb in beats:
        by_site.setdefault(hb.site_id, []).append(hb)
    return [(site.encode(),
             camera_pb2.CameraHeartbeatBatch(site_id=site, heartbeats=group).SerializeToString())
            for site, group in by_site.items()]


async def _send_heartbeats(settings: PlatformSettings, fleet: Fleet, producer: AIOKafkaProducer,
                           stop: asyncio.Event, options: SimOptions) -> None:
    name = topic_names.CAMERA_HEARTBEAT_BATCHES if options.batches else topic_names.CAMERA_HEARTBEATS
    topic = load_catalogue()[name].full_name(settings.topic_prefix)
    started = last = time.monotonic()
    log.info("camera simulator ready: %d cameras -> %s every %gs, control http://%s:%d/faults",
             len(fleet.cameras), topic, options.interval_s, options.host, options.control_port)
    while not stop.is_set() and not (options.duration_s and time.monotonic() - started >= options.duration_s):
        now = time.monotonic()
        beats = fleet.heartbeats(time.time(), now - last)
        last = now
        sent = [await producer.send(topic, value, key=key) for key, value in messages(beats, options.batches)]
        await asyncio.gather(*sent)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), options.interval_s)


def scaled_cameras(inventory: Sequence[CameraInfo], count: int) -> list[CameraInfo]:
    """`count` cameras at city scale (smartcity.inventory.scaled_devices)."""
    return scaled_devices(inventory, count, "camera_id")


def main() -> None:
    settings = PlatformSettings.from_env("camera-simulator")
    configure_logging(settings)
    options = SimOptions.from_env()
    fleet = Fleet(scaled_cameras(cameras(), options.camera_count), seed=options.seed)
    control = ControlServer(options.host, options.control_port, fleet.command, fleet.active).start()
    asyncio.run(run(settings, fleet, control, replace(options, control_port=control.port)))


if __name__ == "__main__":
    main()
