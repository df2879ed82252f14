"""SNMP poller of the access points: one ApTelemetry heartbeat per AP per interval.

    every WIFI_SNMP_INTERVAL_S:  for each AP (at most WIFI_SNMP_CONCURRENCY at once)
      GET  sysUpTime.0, sysDescr.0 (+ the vendor's client count when it is one value)
      GETBULK ifType, ifHCInOctets, ifHCOutOctets, hrProcessorLoad, hrStorageTable (+ the
           vendor's per-radio client column), all columns in one request, repeated for the
           columns longer than one answer
      → core/snmp_counters (rx/tx since boot across wraps and reboots, cpu, memory, clients)
      → ApTelemetry (seq: the clock in ms, strictly increasing per AP) → wifi.ap-telemetry.v1

SNMP v2c with a community per AP. An AP that does not answer within WIFI_SNMP_TIMEOUT_S after
WIFI_SNMP_RETRIES retries, or answers with an error (a wrong community gets no answer at all),
produces no heartbeat: the service's silence rule decides it is down, never a made-up reading.
Values an agent lacks (no hrProcessorLoad, no RAM row, no client OID) are sent as 0 and
counted in `wifi_snmp_missing_values_total`.

`python -m wifi_telemetry.edge.snmp` (settings in `SnmpConfig`, APs in `load_targets`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Histogram
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    bulk_cmd,
    get_cmd,
)

from smartcity.codec import to_timestamp
from smartcity.device_files import DeviceFile
from smartcity.edge_runtime import every, run_until_signalled
from smartcity.kafka import make_producer
from smartcity.observability import configure_logging, latency_histogram, start_observability
from smartcity.settings import PlatformSettings, SettingsError, env_fields
from smartcity.topics import load_catalogue
from smartcity.v1 import wifi_pb2
from wifi_telemetry.core import snmp_counters as sc

log = logging.getLogger("wifi_telemetry.edge.snmp")

SERVICE_NAME = "wifi-snmp"
TELEMETRY_TOPIC = "wifi.ap-telemetry.v1"
DEFAULT_METRICS_PORT = 9122
VENDORS_FILE = Path(__file__).with_name("snmp_vendors.yaml")

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
IF_TYPE = "1.3.6.1.2.1.2.2.1.3"
IF_HC_IN_OCTETS = "1.3.6.1.2.1.31.1.1.1.6"
IF_HC_OUT_OCTETS = "1.3.6.1.2.1.31.1.1.1.10"
HR_PROCESSOR_LOAD = "1.3.6.1.2.1.25.3.3.1.2"
HR_STORAGE_TYPE = "1.3.6.1.2.1.25.2.3.1.2"
HR_STORAGE_UNITS = "1.3.6.1.2.1.25.2.3.1.4"
HR_STORAGE_SIZE = "1.3.6.1.2.1.25.2.3.1.5"
HR_STORAGE_USED = "1.3.6.1.2.1.25.2.3.1.6"
# Rows per column per GETBULK: an AP has a few interfaces and ~10 storage rows; every varbind
# costs decoding time in pysnmp, so a small first answer and a continuation for long columns.
BULK_REPETITIONS = 12
MAX_BULK_REQUESTS = 64
_COLUMNS = (IF_TYPE, IF_HC_IN_OCTETS, IF_HC_OUT_OCTETS, HR_PROCESSOR_LOAD, HR_STORAGE_TYPE,
            HR_STORAGE_UNITS, HR_STORAGE_SIZE, HR_STORAGE_USED)

POLLS = Counter("wifi_snmp_polls_total", "AP polls by outcome (ok, unreachable, error)", ["outcome"])
MISSING = Counter("wifi_snmp_missing_values_total", "Values an AP's agent did not provide", ["value"])
PRODUCE_FAILED = Counter("wifi_snmp_produce_failed_total", "Heartbeats Kafka did not acknowledge")
POLL_SECONDS: Histogram = latency_histogram("wifi_snmp_poll_seconds", "Time to poll one AP")


@dataclass(frozen=True)
class SnmpConfig:
    """Settings of the poller, from the environment.

    WIFI_SNMP_TARGETS_FILE   YAML list of the APs to poll (required; see load_targets)
    WIFI_SNMP_VENDORS_FILE   vendor → client-count OID (default: snmp_vendors.yaml beside this)
    WIFI_SNMP_INTERVAL_S     seconds between polls of an AP (default 30)
    WIFI_SNMP_TIMEOUT_S      seconds to wait for one answer (default 2)
    WIFI_SNMP_RETRIES        retries of a request before the AP counts as unreachable (default 1)
    WIFI_SNMP_CONCURRENCY    APs polled at once (default 50)
    """

    targets_file: str = ""
    vendors_file: str = str(VENDORS_FILE)
    interval_s: float = 30.0
    timeout_s: float = 2.0
    retries: int = 1
    concurrency: int = 50

    @classmethod
    def from_env(cls) -> SnmpConfig:
        config = cls(**env_fields(cls, "WIFI_SNMP_"))
        if not config.targets_file:
            raise SettingsError("WIFI_SNMP_TARGETS_FILE must name the YAML list of the APs to poll")
        if config.concurrency < 1 or config.interval_s <= 0 or config.timeout_s <= 0 or config.retries < 0:
            raise SettingsError("WIFI_SNMP_CONCURRENCY >= 1, WIFI_SNMP_INTERVAL_S > 0, "
                                "WIFI_SNMP_TIMEOUT_S > 0 and WIFI_SNMP_RETRIES >= 0 are required")
        return config


@dataclass(frozen=True)
class Vendor:
    name: str
    clients_oid: str
    walk: bool


@dataclass(frozen=True)
class Target:
    ap_id: str
    site_id: str
    host: str
    port: int
    community: str = field(repr=False)
    vendor: Vendor
    name: str = ""


def load_vendors(path: str | Path) -> dict[str, Vendor]:
    document = DeviceFile.load("WIFI_SNMP_VENDORS_FILE", path).document
    return {str(name): Vendor(str(name), str(entry["clients_oid"]), bool(entry.get("walk", False)))
            for name, entry in document.items()}


def load_targets(path: str | Path, vendors: Mapping[str, Vendor]) -> list[Target]:
    """The APs of a targets file.

    ```yaml
    defaults: {port: 161, vendor: openwrt, community_file: /etc/snmp/community}
    access_points:
      - {ap_id: ap-alun-alun-01, site_id: alun-alun, host: 10.20.0.11, vendor: mikrotik}
      - {ap_id: ap-pendopo-01, site_id: pendopo, host: 10.20.1.11, community: "..."}
    ```
    `community_file` (relative to the targets file) keeps the community out of the file.
    """
    targets_file = DeviceFile.load("WIFI_SNMP_TARGETS_FILE", path)
    targets = []
    for entry in targets_file.entries("access_points"):
        vendor = vendors.get(str(entry.fields.get("vendor", "")))
        if vendor is None:
            raise SettingsError(f"{entry.where} vendor {entry.fields.get('vendor')!r} "
                                f"is not one of {sorted(vendors)}")
        targets.append(Target(entry.required("ap_id"), entry.required("site_id"), entry.required("host"),
                              int(entry.fields.get("port", 161)), targets_file.secret(entry, "community"),
                              vendor, str(entry.fields.get("name", ""))))
    return targets


class PollError(Exception):
    """The AP did not answer, or answered with an SNMP error: no heartbeat."""


@dataclass
class ApMemory:
    """What the poller keeps between polls of one AP."""

    seq: int = 0
    rx: sc.CounterState | None = None
    tx: sc.CounterState | None = None


@dataclass(frozen=True)
class Reading:
    uptime_ticks: int
    firmware: str
    if_types: dict[int, int]
    rx: dict[int, int]
    tx: dict[int, int]
    processor_loads: list[int]
    storage: list[sc.StorageRow]
    clients: int | None


class SnmpPoller:
    """Polls targets over one SNMP engine; `poll` → Reading or PollError."""

    def __init__(self, config: SnmpConfig) -> None:
        self.config = config
        self.engine = SnmpEngine()

    def close(self) -> None:
        self.engine.close_dispatcher()

    async def poll(self, target: Target) -> Reading:
        auth = CommunityData(target.community, mpModel=1)
        transport = await UdpTransportTarget.create((target.host, target.port), timeout=self.config.timeout_s,
                                                    retries=self.config.retries)
        scalars = [SYS_UPTIME, SYS_DESCR] + ([] if target.vendor.walk else [target.vendor.clients_oid])
        columns = list(_COLUMNS) + ([target.vendor.clients_oid] if target.vendor.walk else [])
        got, tables = await asyncio.gather(self._get(auth, transport, scalars),
                                           self._columns(auth, transport, columns))
        if not isinstance(got.get(SYS_UPTIME), int):
            raise PollError("no sysUpTime")
        clients_values: Iterable[object] = (tables[target.vendor.clients_oid].values() if target.vendor.walk
                                            else [got.get(target.vendor.clients_oid)])
        return Reading(
            uptime_ticks=int(got[SYS_UPTIME]), firmware=str(got.get(SYS_DESCR, ""))[:120],
            if_types={k: int(v) for k, v in tables[IF_TYPE].items()},
            rx={k: int(v) for k, v in tables[IF_HC_IN_OCTETS].items()},
            tx={k: int(v) for k, v in tables[IF_HC_OUT_OCTETS].items()},
            processor_loads=[int(v) for v in tables[HR_PROCESSOR_LOAD].values()],
            storage=_storage_rows(tables),
            clients=sc.client_count(v for v in clients_values if v is not None))

    async def _get(self, auth: CommunityData, transport: UdpTransportTarget,
                   oids: list[str]) -> dict[str, Any]:
        objects = (ObjectType(ObjectIdentity(o)) for o in oids)
        error, status, _, binds = await get_cmd(self.engine, auth, transport, ContextData(), *objects,
                                                lookupMib=False)
        if error or status:
            raise PollError(str(error or status))
        return {str(name): _plain(value) for name, value in binds if _plain(value) is not None}

    async def _columns(self, auth: CommunityData, transport: UdpTransportTarget,
                       columns: list[str]) -> dict[str, dict[int, Any]]:
        """Table columns by their last sub-identifier (ifIndex, hrStorageIndex...), read
        together: one GETBULK carries BULK_REPETITIONS rows of every column still open, so a
        small AP answers in one round trip instead of one walk per column."""
        tables: dict[str, dict[int, Any]] = {c: {} for c in columns}
        cursor = {c: c for c in columns}  # column → the OID to continue after
        for _ in range(MAX_BULK_REQUESTS):
            if not cursor:
                return tables
            names = list(cursor)
            objects = (ObjectType(ObjectIdentity(cursor[c])) for c in names)
            error, status, _, binds = await bulk_cmd(self.engine, auth, transport, ContextData(), 0,
                                                     BULK_REPETITIONS, *objects, lookupMib=False)
            if error or status:
                raise PollError(str(error or status))
            finished: set[str] = set()
            for position, (name, value) in enumerate(binds):
                column, oid, plain = names[position % len(names)], str(name), _plain(value)
                if column in finished or not oid.startswith(column + ".") or plain is None:
                    finished.add(column)  # past the column's end (or the MIB's)
                    continue
                tables[column][int(oid.rsplit(".", 1)[1])] = plain
                cursor[column] = oid
            for column in finished:
                cursor.pop(column, None)
        raise PollError(f"tables longer than {MAX_BULK_REQUESTS * BULK_REPETITIONS} rows")


def _plain(value: Any) -> Any:
    """An SNMP value as int, bytes or OID tuple; None for noSuchObject/noSuchInstance/endOfMib."""
    kind = type(value).__name__
    if kind in ("NoSuchObject", "NoSuchInstance", "EndOfMibView", "Null"):
        return None
    if kind == "ObjectIdentifier":
        return tuple(value)
    if kind == "OctetString":
        return bytes(value).decode("utf-8", "replace")
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


def _storage_rows(tables: Mapping[str, Mapping[int, Any]]) -> list[sc.StorageRow]:
    types = tables[HR_STORAGE_TYPE]
    return [sc.StorageRow(tuple(types[i]), int(tables[HR_STORAGE_UNITS].get(i, 1)),
                          int(tables[HR_STORAGE_SIZE].get(i, 0)), int(tables[HR_STORAGE_USED].get(i, 0)))
            for i in types if isinstance(types[i], tuple)]


def telemetry(target: Target, reading: Reading, memory: ApMemory, observed_at: float) -> wifi_pb2.ApTelemetry:
    """The heartbeat of a reading; advances the AP's counters and seq in `memory`."""
    rx, tx = (sc.counted_interfaces(values, reading.if_types) for values in (reading.rx, reading.tx))
    memory.rx = sc.advance(memory.rx, reading.uptime_ticks, rx)
    memory.tx = sc.advance(memory.tx, reading.uptime_ticks, tx)
    memory.seq = sc.next_seq(memory.seq, int(observed_at * 1000))
    cpu, mem = sc.cpu_percent(reading.processor_loads), sc.memory_percent(reading.storage)
    for name, value in (("cpu", cpu), ("memory", mem), ("clients", reading.clients)):
        if value is None:
            MISSING.labels(name).inc()
    return wifi_pb2.ApTelemetry(
        ap_id=target.ap_id, site_id=target.site_id, seq=memory.seq, observed_time=to_timestamp(observed_at),
        uptime_seconds=reading.uptime_ticks // 100, cpu_percent=cpu or 0.0, memory_percent=mem or 0.0,
        clients=reading.clients or 0, rx_bytes=memory.rx.total % sc.COUNTER64_MODULUS,
        tx_bytes=memory.tx.total % sc.COUNTER64_MODULUS, firmware=reading.firmware, name=target.name)


class PollLoop:
    """Every interval: poll all targets (bounded concurrency), produce the heartbeats, await acks."""

    def __init__(self, config: SnmpConfig, targets: list[Target], producer: AIOKafkaProducer,
                 topic: str) -> None:
        self.config, self.targets, self.producer, self.topic = config, targets, producer, topic
        self.poller = SnmpPoller(config)
        self.memory = {t.ap_id: ApMemory() for t in targets}
        self._slots = asyncio.Semaphore(config.concurrency)
        self.rounds = 0

    async def run(self, stop: asyncio.Event) -> None:
        await every(self.config.interval_s, stop, self.round)

    async def round(self) -> int:
        """One poll of every target; the number of heartbeats Kafka acknowledged."""
        sent = await asyncio.gather(*(self._poll_and_send(t) for t in self.targets))
        self.rounds += 1
        return sum(sent)

    async def _poll_and_send(self, target: Target) -> int:
        async with self._slots:
            started = time.monotonic()
            # The whole poll is bounded too: every walk may retry, a slow agent must not stall a round.
            deadline = self.config.timeout_s * (self.config.retries + 1) * 4
            try:
                reading = await asyncio.wait_for(self.poller.poll(target), deadline)
            except (PollError, TimeoutError) as exc:
                POLLS.labels("unreachable").inc()
                log.info("AP %s (%s) did not answer: %s", target.ap_id, target.host, exc or "poll deadline")
                return 0
            except Exception as exc:  # a malformed answer must not stop the poller
                POLLS.labels("error").inc()
                log.warning("AP %s poll failed: %s: %s", target.ap_id, type(exc).__name__, exc)
                return 0
            POLL_SECONDS.observe(time.monotonic() - started)
            POLLS.labels("ok").inc()
        heartbeat = telemetry(target, reading, self.memory[target.ap_id], time.time())
        try:
            future = await self.producer.send(self.topic, heartbeat.SerializeToString(deterministic=True),
                                              key=target.ap_id.encode())
            await asyncio.wait_for(future, 30)
        except Exception as exc:
            PRODUCE_FAILED.inc()
            log.warning("heartbeat of %s not acknowledged by Kafka: %s", target.ap_id, type(exc).__name__)
            return 0
        return 1


async def serve(settings: PlatformSettings, config: SnmpConfig, targets: list[Target],
                stop: asyncio.Event) -> None:
    topic = load_catalogue()[TELEMETRY_TOPIC].full_name(settings.topic_prefix)
    producer = make_producer(settings)
    await producer.start()
    loop = PollLoop(config, targets, producer, topic)
    observability = start_observability(settings, ready=lambda: loop.rounds > 0)
    log.info("polling %d AP(s) every %gs -> %s", len(targets), config.interval_s, topic)
    try:
        await loop.run(stop)
    finally:
        loop.poller.close()
        await producer.stop()
        if observability is not None:
            observability.stop()


def main() -> None:
    settings = PlatformSettings.from_env(SERVICE_NAME, DEFAULT_METRICS_PORT)
    configure_logging(settings)
    config = SnmpConfig.from_env()
    targets = load_targets(config.targets_file, load_vendors(config.vendors_file))

    run_until_signalled(lambda stop: serve(settings, config, targets, stop))


if __name__ == "__main__":
    main()
