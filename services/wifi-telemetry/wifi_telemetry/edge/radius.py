"""RADIUS accounting server: hotspot controllers' Accounting-Requests → ClientSession events.

    NAS ──UDP Accounting-Request──► verify (secret per NAS) ──► dedup ──► hash MAC ──► Kafka
     ▲                                                                             (acks=all)
     └──────────────── Accounting-Response, only once the broker acknowledged ◄───────┘

A NAS retransmits an unanswered request, so answering only after the produce is acknowledged
makes a Kafka outage cost nothing: the NAS keeps the record until the platform has it.
Retransmissions are idempotent: the same (NAS, Identifier, Request Authenticator) while the
first copy is in flight is ignored, and once acknowledged is answered from the cache; the
event id (NAS, Acct-Session-Id, status, Acct-Session-Time) is stable, so a copy re-signed under
a new Identifier is answered without producing again. Calling-Station-Id (the client MAC) is
keyed-hashed (wifi_telemetry.core.privacy) before anything leaves the process; logs never carry it.
An authentic request that carries no session (no Acct-Session-Id, an AP no table maps) goes to
`wifi.client-sessions.v1.dlq`, its personal attributes pseudonymised, before it is answered.

Bounded: datagrams over 4096 bytes are dropped, at most WIFI_RADIUS_MAX_IN_FLIGHT requests
wait for Kafka at once (the rest are dropped unanswered: the NAS retries), each produce waits
WIFI_RADIUS_PRODUCE_TIMEOUT_S, the dedup cache holds WIFI_RADIUS_DEDUP_SIZE entries for
WIFI_RADIUS_DEDUP_TTL_S.

`python -m wifi_telemetry.edge.radius` (settings in `RadiusConfig`; NAS table in `NasTable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge, Histogram

from smartcity.codec import to_timestamp
from smartcity.device_files import DeviceEntry, DeviceFile
from smartcity.dlq import DeadLetterPublisher, SourceRecord, aiokafka_sender
from smartcity.edge_runtime import run_until_signalled
from smartcity.kafka import make_producer
from smartcity.observability import configure_logging, latency_histogram, start_observability
from smartcity.settings import PlatformSettings, SettingsError, env_fields
from smartcity.topics import load_catalogue
from smartcity.v1 import wifi_pb2
from wifi_telemetry.core.privacy import ClientHasher
from wifi_telemetry.edge import radius_protocol as rp

log = logging.getLogger("wifi_telemetry.edge.radius")

SERVICE_NAME = "wifi-radius"
SESSIONS_TOPIC = "wifi.client-sessions.v1"
DEFAULT_METRICS_PORT = 9121
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024

PACKETS = Counter("wifi_radius_packets_total", "Accounting datagrams by outcome", ["outcome"])
EVENTS = Counter("wifi_radius_events_total", "ClientSession events acknowledged by Kafka", ["kind"])
IN_FLIGHT = Gauge("wifi_radius_in_flight", "Accounting-Requests waiting for the broker's ack")
ACK_SECONDS: Histogram = latency_histogram("wifi_radius_ack_seconds",
                                           "Datagram received → Accounting-Response sent")

_KINDS = {rp.START: wifi_pb2.SESSION_EVENT_KIND_CONNECT,
          rp.INTERIM_UPDATE: wifi_pb2.SESSION_EVENT_KIND_INTERIM_UPDATE,
          rp.STOP: wifi_pb2.SESSION_EVENT_KIND_DISCONNECT}


@dataclass(frozen=True)
class RadiusConfig:
    """Settings of the accounting server, from the environment.

    WIFI_RADIUS_HOST                interface to listen on (default 127.0.0.1; 0.0.0.0 in a pod)
    WIFI_RADIUS_PORT                UDP port (default 1813, the accounting port of RFC 2866)
    WIFI_RADIUS_NAS_FILE            YAML table of the NASes (required; see NasTable)
    WIFI_RADIUS_MAX_IN_FLIGHT       requests waiting for Kafka at once (default 2000)
    WIFI_RADIUS_PRODUCE_TIMEOUT_S   longest wait for the broker's ack (default 10)
    WIFI_RADIUS_DEDUP_SIZE          remembered requests and events (default 50000)
    WIFI_RADIUS_DEDUP_TTL_S         how long they are remembered (default 600)
    WIFI_CLIENT_HASH_SALT           the salt of the client hash (wifi_telemetry.core.privacy)
    """

    host: str = "127.0.0.1"
    port: int = 1813
    nas_file: str = ""
    max_in_flight: int = 2000
    produce_timeout_s: float = 10.0
    dedup_size: int = 50_000
    dedup_ttl_s: float = 600.0

    @classmethod
    def from_env(cls) -> RadiusConfig:
        config = cls(**env_fields(cls, "WIFI_RADIUS_"))
        if not config.nas_file:
            raise SettingsError("WIFI_RADIUS_NAS_FILE must name the YAML table of the NASes")
        return config


@dataclass(frozen=True)
class Nas:
    key: str
    secret: bytes
    ap_id: str
    site_id: str


@dataclass(frozen=True)
class Placement:
    ap_id: str
    site_id: str


class NasTable:
    """Which NAS may send accounting, with which secret, for which AP and site.

    ```yaml
    nas:
      - nas_identifier: mikrotik-alun-alun   # and/or nas_ip: 10.20.0.2 (NAS-IP-Address or source)
        secret_file: /etc/radius/alun-alun.secret   # or secret: "..." (tests only)
        ap_id: ap-alun-alun-01                # default AP and site of its sessions
        site_id: alun-alun
    access_points:                            # Called-Station-Id (MAC or name before ":ssid")
      "AA-BB-CC-00-00-01": {ap_id: ap-alun-alun-02, site_id: alun-alun}
    ```
    """

    def __init__(self, nas: Mapping[str, Nas], access_points: Mapping[str, Placement]) -> None:
        self.nas = dict(nas)
        self.access_points = dict(access_points)

    @classmethod
    def load(cls, path: str | Path) -> NasTable:
        nas_file = DeviceFile.load("WIFI_RADIUS_NAS_FILE", path)
        nas: dict[str, Nas] = {}
        for entry in nas_file.entries("nas"):
            secret = nas_file.secret(entry, "secret").encode()
            for key in _nas_keys(entry):
                nas[key] = Nas(key, secret, str(entry.fields.get("ap_id", "")),
                               str(entry.fields.get("site_id", "")))
        document = nas_file.document
        aps = {rp.called_station_ap(str(k)): Placement(str(v["ap_id"]), str(v.get("site_id", "")))
               for k, v in (document.get("access_points") or {}).items()}
        return cls(nas, aps)

    def find(self, packet: rp.Packet, source_ip: str) -> Nas | None:
        return next((self.nas[k] for k in rp.nas_lookup_keys(packet, source_ip) if k in self.nas), None)

    def placement(self, nas: Nas, record: rp.AccountingRecord) -> Placement:
        """The AP of a record: its Called-Station-Id when mapped, else the NAS's own."""
        mapped = self.access_points.get(rp.called_station_ap(record.called_station_id))
        if mapped is not None:
            return Placement(mapped.ap_id, mapped.site_id or nas.site_id)
        return Placement(nas.ap_id, nas.site_id)


def _nas_keys(entry: DeviceEntry) -> list[str]:
    keys = [str(entry.fields[k]) for k in ("nas_identifier", "nas_ip") if entry.fields.get(k)]
    if not keys:
        raise SettingsError(f"{entry.where} needs nas_identifier or nas_ip")
    return keys


class TtlCache:
    """A bounded mapping whose entries expire: the oldest go first when it is full."""

    def __init__(self, size: int, ttl_s: float) -> None:
        self._size, self._ttl = size, ttl_s
        self._items: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any, now: float) -> Any:
        item = self._items.get(key)
        if item is None or now - item[0] > self._ttl:
            return None
        return item[1]

    def put(self, key: Any, value: Any, now: float) -> None:
        self._items[key] = (now, value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def pop(self, key: Any) -> None:
        self._items.pop(key, None)


def session_event(record: rp.AccountingRecord, placement: Placement, hasher: ClientHasher,
                  nas_key: str, received_at: float) -> wifi_pb2.ClientSession:
    """The ClientSession of an accounting record, the MAC hashed (ValueError when unusable)."""
    kind = _KINDS.get(record.status)
    if kind is None:
        raise ValueError(f"status {record.status_name} carries no session")
    if not record.session_id:
        raise ValueError("no Acct-Session-Id")
    if not placement.ap_id or not placement.site_id:
        raise ValueError("neither Called-Station-Id nor the NAS maps to an ap_id and site_id")
    return wifi_pb2.ClientSession(
        ap_id=placement.ap_id, site_id=placement.site_id, kind=kind,
        client_hash=hasher.hash(record.calling_station_id),  # ValueError: not a MAC (never quoted)
        event_time=to_timestamp(rp.event_time(record, received_at)),
        rx_bytes=record.input_bytes, tx_bytes=record.output_bytes, session_id=record.session_id,
        event_id=rp.event_id(nas_key, record), session_time_seconds=record.session_time_s)


class AccountingServer(asyncio.DatagramProtocol):
    """The UDP side: every datagram judged, produced, answered after the ack."""

    def __init__(self, config: RadiusConfig, table: NasTable, hasher: ClientHasher,
                 producer: AIOKafkaProducer, topic: str) -> None:
        self.config, self.table, self.hasher = config, table, hasher
        self.producer, self.topic = producer, topic
        self.requests = TtlCache(config.dedup_size, config.dedup_ttl_s)  # request → response|None
        self.events = TtlCache(config.dedup_size, config.dedup_ttl_s)  # event id → True once acked
        self.transport: asyncio.DatagramTransport | None = None
        self.dead_letters = DeadLetterPublisher(SERVICE_NAME, aiokafka_sender(producer))
        self.producer_ready = False
        self._tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        received_at = time.time()
        try:
            packet = rp.parse_packet(data)
            nas = self.table.find(packet, str(addr[0]))
            if nas is None:
                raise rp.RadiusError("unknown_nas", "no NAS configured under its identifier or address")
            rp.verify_accounting_request(packet, nas.secret)
        except rp.RadiusError as exc:
            PACKETS.labels(exc.reason).inc()
            log.warning("dropped a datagram from %s: %s", addr[0], exc)  # never the attributes
            return
        self._accept(packet, nas, addr, received_at)

    def _accept(self, packet: rp.Packet, nas: Nas, addr: tuple[str | Any, int], received_at: float) -> None:
        request_key = (nas.key, packet.identifier, packet.authenticator)
        cached = self.requests.get(request_key, received_at)
        if cached is not None:
            PACKETS.labels("retransmit_in_flight" if cached is _PENDING else "retransmit_answered").inc()
            if cached is not _PENDING:
                self._reply(cached, addr)
            return
        if not self.producer_ready or len(self._tasks) >= self.config.max_in_flight:
            PACKETS.labels("kafka_not_ready" if not self.producer_ready else "overloaded").inc()
            return  # unanswered: the NAS retransmits
        self.requests.put(request_key, _PENDING, received_at)
        handling = self._handle(packet, nas, addr, received_at, request_key)
        task = asyncio.get_running_loop().create_task(handling)
        self._tasks.add(task)
        IN_FLIGHT.set(len(self._tasks))
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        IN_FLIGHT.set(len(self._tasks))

    async def _handle(self, packet: rp.Packet, nas: Nas, addr: tuple[str | Any, int], received_at: float,
                      request_key: tuple[str, int, bytes]) -> None:
        response = rp.accounting_response(packet, nas.secret)
        try:
            outcome = await self._produce(packet, nas, received_at)
        except Exception as exc:  # the broker did not acknowledge: no answer, the NAS retries
            self.requests.pop(request_key)
            PACKETS.labels("kafka_failed").inc()
            log.warning("accounting from NAS %s not acknowledged by Kafka (%s): left for the NAS to "
                        "retransmit", nas.key, type(exc).__name__)
            return
        self.requests.put(request_key, response, time.time())
        PACKETS.labels(outcome).inc()
        self._reply(response, addr)
        ACK_SECONDS.observe(time.time() - received_at)

    async def _produce(self, packet: rp.Packet, nas: Nas, received_at: float) -> str:
        """Produces the record's event and waits for the ack; the outcome label."""
        try:
            record = rp.accounting_record(packet)
            if record.status in (rp.ACCOUNTING_ON, rp.ACCOUNTING_OFF):
                return "nas_" + record.status_name  # the NAS rebooted: nothing per session
            placement = self.table.placement(nas, record)
            event = session_event(record, placement, self.hasher, nas.key, received_at)
        except ValueError as exc:
            # Authentic but unusable: kept as a dead letter (personal attributes pseudonymised),
            # then answered, or the NAS would resend it forever.
            log.warning("accounting from NAS %s unusable: %s", nas.key, exc)
            await self._dead_letter(packet, nas, str(exc))
            return "unusable"
        if self.events.get(event.event_id, received_at):
            return "duplicate_event"
        async with asyncio.timeout(self.config.produce_timeout_s):  # no extra task per request
            await self._send_acked(event)
        self.events.put(event.event_id, True, time.time())
        EVENTS.labels(wifi_pb2.SessionEventKind.Name(event.kind)).inc()
        return "accepted"

    async def _dead_letter(self, packet: rp.Packet, nas: Nas, reason: str) -> None:
        record = SourceRecord(topic=self.topic, partition=-1, offset=-1, key=nas.key.encode(),
                              value=rp.redacted(packet, self._pseudonym),
                              headers=(("radius.nas", nas.key.encode()),))
        async with asyncio.timeout(self.config.produce_timeout_s):
            await self.dead_letters.publish(record, f"RADIUS Accounting-Request unusable: {reason}")

    def _pseudonym(self, value: bytes) -> bytes:
        try:
            return self.hasher.hash(value.decode("utf-8", "replace")).encode()
        except ValueError:  # not a MAC (a user name...): nothing of it is kept
            return b"<redacted>"

    async def _send_acked(self, event: wifi_pb2.ClientSession) -> None:
        value = event.SerializeToString(deterministic=True)
        future = await self.producer.send(self.topic, value=value, key=event.ap_id.encode())
        await future

    def _reply(self, response: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(response, addr)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


_PENDING = object()


async def start_producer(producer: AIOKafkaProducer, server: AccountingServer, stop: asyncio.Event) -> None:
    """Starts the producer, retrying while the broker is away (requests stay unanswered)."""
    while not stop.is_set():
        try:
            await producer.start()
            server.producer_ready = True
            log.info("Kafka producer ready")
            return
        except Exception as exc:
            log.warning("Kafka not reachable yet (%s); retrying", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)


async def serve(settings: PlatformSettings, config: RadiusConfig, table: NasTable, hasher: ClientHasher,
                stop: asyncio.Event) -> None:
    topic = load_catalogue()[SESSIONS_TOPIC].full_name(settings.topic_prefix)
    producer = make_producer(settings, request_timeout_ms=int(config.produce_timeout_s * 1000) + 5000)
    server = AccountingServer(config, table, hasher, producer, topic)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: server, local_addr=(config.host, config.port))
    # A burst of NAS retransmissions after an outage must queue in the kernel, not be dropped.
    with contextlib.suppress(OSError):
        udp = transport.get_extra_info("socket")
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
    observability = start_observability(settings, live=lambda: True, ready=lambda: server.producer_ready)
    log.info("RADIUS accounting on udp://%s:%d for %d NAS key(s) -> %s", config.host, config.port,
             len(table.nas), topic)
    starter = asyncio.create_task(start_producer(producer, server, stop))
    try:
        await stop.wait()
    finally:
        transport.close()
        starter.cancel()
        await server.drain()
        await producer.stop()
        if observability is not None:
            observability.stop()


def main() -> None:
    settings = PlatformSettings.from_env(SERVICE_NAME, DEFAULT_METRICS_PORT)
    configure_logging(settings)
    config = RadiusConfig.from_env()
    table, hasher = NasTable.load(config.nas_file), ClientHasher.from_env()

    run_until_signalled(lambda stop: serve(settings, config, table, hasher, stop))


if __name__ == "__main__":
    main()
