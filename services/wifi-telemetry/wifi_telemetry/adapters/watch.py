"""Prints what the service publishes, one line per message (for demos and debugging).

    python -m wifi_telemetry.adapters.watch              # follow wifi.ap-status.v1 and wifi.site-stats.v1
    python -m wifi_telemetry.adapters.watch --from-start --exit-idle 3

Uses KAFKA_BOOTSTRAP_SERVERS and SMARTCITY_TOPIC_PREFIX.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from smartcity import topic_names
from smartcity.codec import from_timestamp
from smartcity.kafka import client_security
from smartcity.settings import PlatformSettings
from smartcity.topics import load_catalogue
from smartcity.v1 import common_pb2, wifi_pb2


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(seconds)) if seconds else "-"


def describe_status(status: wifi_pb2.AccessPointStatus) -> str:
    reasons = "; ".join(r.detail for r in status.reasons)
    return (f"status {status.ap_id:<26} {common_pb2.HealthState.Name(status.health)[13:]:<8} "
            f"clients={status.clients_now:<4} rx={status.rx_bps / 1e6:7.2f}Mb/s "
            f"tx={status.tx_bps / 1e6:7.2f}Mb/s "
            f"seq={status.last_seq} seen={_clock(from_timestamp(status.last_seen))} "
            f"avail1h={status.availability.last_hour_ratio:.3f} {reasons}")


def describe_stats(stats: wifi_pb2.SiteWifiStats) -> str:
    window = common_pb2.StatsWindow.Name(stats.window)[13:].lower()
    return (f"stats  {stats.site_id + ':' + window:<26} from {_clock(from_timestamp(stats.window_start))} "
            f"users={stats.unique_users} sessions={stats.sessions_started} peak={stats.peak_clients} "
            f"now={stats.clients_now} rx={stats.rx_bytes} tx={stats.tx_bytes} "
            f"aps={stats.access_points_up}/{stats.access_points_total} avail={stats.availability_ratio:.3f}")


def describe(record: ConsumerRecord[bytes, bytes], status_topic: str) -> str:
    if record.topic == status_topic:
        return describe_status(wifi_pb2.AccessPointStatus.FromString(record.value or b""))
    return describe_stats(wifi_pb2.SiteWifiStats.FromString(record.value or b""))


async def watch(settings: PlatformSettings, from_start: bool, exit_idle_s: float | None) -> None:
    catalogue = load_catalogue()
    status_topic = catalogue[topic_names.WIFI_AP_STATUS].full_name(settings.topic_prefix)
    stats_topic = catalogue[topic_names.WIFI_SITE_STATS].full_name(settings.topic_prefix)
    consumer = AIOKafkaConsumer(status_topic, stats_topic, bootstrap_servers=settings.kafka_bootstrap,
                                **client_security(settings), group_id=None,
                                auto_offset_reset="earliest" if from_start else "latest")
    await consumer.start()
    try:
        idle_since = time.monotonic()
        while exit_idle_s is None or time.monotonic() - idle_since < exit_idle_s:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                idle_since = time.monotonic()
                for record in records:
                    print(describe(record, status_topic), flush=True)
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m wifi_telemetry.adapters.watch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-start", action="store_true", help="read the topics from the beginning")
    parser.add_argument("--exit-idle", type=float, default=None, help="stop after this many idle seconds")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch(PlatformSettings.from_env("wifi-watch"), args.from_start, args.exit_idle))


if __name__ == "__main__":
    main()
