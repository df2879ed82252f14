"""The camera simulator: `python -m camera_health.simulator`.

Sends a CameraHeartbeat per camera of `smartcity.inventory.cameras()` (Alun-Alun's four first,
then the junction, terminal, market and tourist-site cameras) to camera.heartbeats.v1 every
SIM_HEARTBEAT_INTERVAL_S, and takes faults on POST http://SIM_CONTROL_HOST:SIM_CONTROL_PORT/faults
(see `camera_health.fleet` for the commands). Runs until SIGTERM/SIGINT, or SIM_DURATION_S.

    SIM_HEARTBEAT_INTERVAL_S  seconds between heartbeats (default 10; tests and demos ~1)
    SIM_CONTROL_PORT          control endpoint port (default 9112; 0 picks a free one)
    SIM_CONTROL_HOST          interface of the control endpoint (default 127.0.0.1)
    SIM_CAMERA_COUNT          simulate only the first N cameras (default 0 = all)
    SIM_SEED                  seed of the noise (default 1)
    SIM_DURATION_S            stop after this long (default 0 = run until stopped)
plus KAFKA_BOOTSTRAP_SERVERS and SMARTCITY_TOPIC_PREFIX like every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time

from camera_health.fleet import Fleet
from smartcity.inventory import cameras
from smartcity.kafka import make_producer, wait_for_broker
from smartcity.observability import configure_logging
from smartcity.settings import PlatformSettings, env_float, env_int, env_str
from smartcity.simcontrol import ControlServer
from smartcity.topics import load_catalogue

log = logging.getLogger("camera_health.simulator")


async def run(settings: PlatformSettings, fleet: Fleet, interval_s: float, control: ControlServer,
              duration_s: float = 0.0) -> None:
    topic = load_catalogue()["camera.heartbeats.v1"].full_name(settings.topic_prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await wait_for_broker(settings.kafka_bootstrap)
    producer = make_producer(settings)
    await producer.start()
    started = last = time.monotonic()
    log.info("camera simulator ready: %d cameras -> %s every %gs, control http://127.0.0.1:%d/faults",
             len(fleet.cameras), topic, interval_s, control.port)
    try:
        while not stop.is_set() and not (duration_s and time.monotonic() - started >= duration_s):
            now = time.monotonic()
            beats = fleet.heartbeats(time.time(), now - last)
            last = now
            sent = [await producer.send(topic, hb.SerializeToString(), key=hb.camera_id.encode())
                    for hb in beats]
            await asyncio.gather(*sent)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
    finally:
        await producer.stop()
        control.stop()


def main() -> None:
    settings = PlatformSettings.from_env("camera-simulator")
    configure_logging(settings)
    count = env_int("SIM_CAMERA_COUNT", 0)
    fleet = Fleet(cameras()[:count] if count > 0 else cameras(), seed=env_int("SIM_SEED", 1))
    control = ControlServer(env_str("SIM_CONTROL_HOST", "127.0.0.1"), env_int("SIM_CONTROL_PORT", 9112),
                            fleet.command, fleet.active).start()
    asyncio.run(run(settings, fleet, env_float("SIM_HEARTBEAT_INTERVAL_S", 10.0), control,
                    env_float("SIM_DURATION_S", 0.0)))


if __name__ == "__main__":
    main()
