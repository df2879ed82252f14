"""The edge of the system: what a collector next to the AP fleet runs (and the simulator too).

A collector polls its controllers (SNMP, the vendor API, syslog of the captive portal...) and
hands each observation to this module as a plain dict, a *reading*. This module hashes the
client MAC (HMAC-SHA256 under WIFI_CLIENT_HASH_SALT), builds the protobuf event of the
contract and produces it, keyed by ap_id, to the real topic. Nothing past `session_from_reading`
ever sees the raw MAC: not Kafka, not the logs.

Telemetry reading (one heartbeat of one AP)::

    {"ap_id": "ap-alun-alun-01", "site_id": "alun-alun", "seq": 1042,
     "observed_time": 1764300000.0,          # epoch seconds (float) of the observation
     "uptime_seconds": 86400, "cpu_percent": 23.5, "memory_percent": 61.0, "clients": 37,
     "rx_bytes": 123456789, "tx_bytes": 987654321,   # monotonic since boot
     "radios": [{"band": "5GHz", "channel": 36, "noise_dbm": -92,
                 "channel_utilization_ratio": 0.31, "clients": 25}],
     "firmware": "OpenWrt 23.05.3", "name": "Alun-Alun Purbalingga AP 1",
     "latitude": -7.3883, "longitude": 109.3639}

Session reading (a client joined or left)::

    {"ap_id": "ap-alun-alun-01", "site_id": "alun-alun", "kind": "connect" | "disconnect",
     "client_mac": "a4:5e:60:12:34:56", "event_time": 1764300003.2, "session_id": "9f2c...",
     "rx_bytes": 0, "tx_bytes": 0}              # session totals, on disconnect

`seq` must be strictly increasing per AP, across reboots (a persistent counter, or e.g. the
collector's clock in milliseconds); a retried reading keeps its seq so the service drops the copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer

from smartcity import topic_names
from smartcity.codec import to_timestamp
from smartcity.kafka import make_producer
from smartcity.settings import PlatformSettings
from smartcity.topics import load_catalogue
from smartcity.v1 import common_pb2, wifi_pb2
from wifi_telemetry.core.privacy import ClientHasher

_SESSION_KINDS = {"connect": wifi_pb2.SESSION_EVENT_KIND_CONNECT,
                  "disconnect": wifi_pb2.SESSION_EVENT_KIND_DISCONNECT}


def telemetry_from_reading(reading: Mapping[str, Any]) -> wifi_pb2.ApTelemetry:
    """Builds the ApTelemetry of a reading (KeyError/ValueError when it lacks what it needs)."""
    message = wifi_pb2.ApTelemetry(
        ap_id=str(reading["ap_id"]), site_id=str(reading["site_id"]), seq=int(reading["seq"]),
        observed_time=to_timestamp(float(reading["observed_time"])),
        uptime_seconds=int(reading.get("uptime_seconds", 0)),
        cpu_percent=float(reading.get("cpu_percent", 0.0)),
        memory_percent=float(reading.get("memory_percent", 0.0)),
        clients=int(reading.get("clients", 0)), rx_bytes=int(reading.get("rx_bytes", 0)),
        tx_bytes=int(reading.get("tx_bytes", 0)), firmware=str(reading.get("firmware", "")),
        name=str(reading.get("name", "")),
    )
    if "latitude" in reading and "longitude" in reading:
        message.location.CopyFrom(common_pb2.GeoPoint(latitude=float(reading["latitude"]),
                                                      longitude=float(reading["longitude"])))
    for radio in reading.get("radios", ()):
        message.radios.add(
            band=str(radio.get("band", "")), channel=int(radio.get("channel", 0)),
            noise_dbm=int(radio.get("noise_dbm", 0)),
            channel_utilization_ratio=float(radio.get("channel_utilization_ratio", 0.0)),
            clients=int(radio.get("clients", 0)),
        )
    return message


def session_from_reading(reading: Mapping[str, Any], hasher: ClientHasher) -> wifi_pb2.ClientSession:
    """Builds the ClientSession of a reading, the MAC replaced by its keyed hash."""
    kind = _SESSION_KINDS.get(str(reading["kind"]))
    if kind is None:
        raise ValueError("kind must be 'connect' or 'disconnect'")
    return wifi_pb2.ClientSession(
        ap_id=str(reading["ap_id"]), site_id=str(reading["site_id"]), kind=kind,
        client_hash=hasher.hash(str(reading["client_mac"])),
        event_time=to_timestamp(float(reading["event_time"])),
        rx_bytes=int(reading.get("rx_bytes", 0)), tx_bytes=int(reading.get("tx_bytes", 0)),
        session_id=str(reading["session_id"]),
    )


M = TypeVar("M", wifi_pb2.ApTelemetry, wifi_pb2.ClientSession)


def _by_site(messages: Iterable[M]) -> dict[str, list[M]]:
    groups: dict[str, list[M]] = {}
    for message in messages:
        groups.setdefault(message.site_id, []).append(message)
    return groups


class EdgeCollector:
    """Produces readings as contract events: idempotent producer, acks=all, key ap_id."""

    def __init__(self, settings: PlatformSettings, hasher: ClientHasher | None = None,
                 producer: AIOKafkaProducer | None = None) -> None:
        catalogue = load_catalogue()
        self.hasher = hasher or ClientHasher.from_env()
        self.telemetry_topic = catalogue[topic_names.WIFI_AP_TELEMETRY].full_name(settings.topic_prefix)
        self.sessions_topic = catalogue[topic_names.WIFI_CLIENT_SESSIONS].full_name(settings.topic_prefix)
        self.telemetry_batches_topic = catalogue[topic_names.WIFI_AP_TELEMETRY_BATCHES].full_name(
            settings.topic_prefix)
        self.session_batches_topic = catalogue[topic_names.WIFI_CLIENT_SESSION_BATCHES].full_name(
            settings.topic_prefix)
        self._producer = producer or make_producer(settings)
        self._pending: list[asyncio.Future[Any]] = []

    async def start(self) -> EdgeCollector:
        await self._producer.start()
        return self

    async def stop(self) -> None:
        try:
            await self.flush()
        finally:
            await self._producer.stop()

    async def send_telemetry(self, reading: Mapping[str, Any]) -> None:
        await self.send_telemetry_message(telemetry_from_reading(reading))

    async def send_session(self, reading: Mapping[str, Any]) -> None:
        await self.send_session_message(session_from_reading(reading, self.hasher))

    async def send_telemetry_message(self, message: wifi_pb2.ApTelemetry) -> None:
        await self._send(self.telemetry_topic, message.ap_id, message.SerializeToString(deterministic=True))

    async def send_session_message(self, message: wifi_pb2.ClientSession) -> None:
        await self._send(self.sessions_topic, message.ap_id, message.SerializeToString(deterministic=True))

    async def send_batches(self, telemetry: Iterable[Mapping[str, Any]],
                           sessions: Iterable[Mapping[str, Any]]) -> None:
        """The readings as one ApTelemetryBatch and one ClientSessionBatch per site (keyed by
        site), as a site's controller that observes its APs together would send them."""
        await self.send_telemetry_batches(
            wifi_pb2.ApTelemetryBatch(site_id=site, readings=messages)
            for site, messages in _by_site(telemetry_from_reading(r) for r in telemetry).items())
        await self.send_session_batches(sessions)

    async def send_telemetry_batches(self, batches: Iterable[wifi_pb2.ApTelemetryBatch]) -> None:
        """Sends ready batches (e.g. a controller's own, kept between polls), keyed by site."""
        for batch in batches:
            await self._send(self.telemetry_batches_topic, batch.site_id,
                             batch.SerializeToString(deterministic=True))

    async def send_session_batches(self, sessions: Iterable[Mapping[str, Any]]) -> None:
        """Session readings as one ClientSessionBatch per site, the MACs hashed here."""
        for site, events in _by_site(session_from_reading(r, self.hasher) for r in sessions).items():
            session_batch = wifi_pb2.ClientSessionBatch(site_id=site, sessions=events)
            await self._send(self.session_batches_topic, site,
                             session_batch.SerializeToString(deterministic=True))

    async def _send(self, topic: str, key: str, value: bytes) -> None:
        self._pending.append(await self._producer.send(topic, value=value, key=key.encode()))
        if len(self._pending) >= 1000:
            await self.flush()

    async def flush(self) -> None:
        """Waits until the broker acknowledged everything sent so far (raises on failure)."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
