"""Simulated public WiFi of Purbalingga: the APs of `smartcity.inventory`, in real time.

    python -m wifi_telemetry.sim.simulator

Every heartbeat each AP reports uptime, CPU, memory, clients, monotonic rx/tx counters and its
radios; clients connect and disconnect (sessions with byte totals) following daily usage curves
(`sim/usage.py`), and many come back (a pool of phones per site), so unique users are fewer than
sessions. Everything goes through the edge code path (`edge/readings.py`): raw MACs are hashed there.

Faults through `POST http://127.0.0.1:$SIM_CONTROL_PORT/faults` (default 9111); `target` is
an ap_id, a site_id or "all":

    {"fault": "offline", "target": "ap-pendopo-01", "duration_s": 60}   silent (no duration: until clear)
    {"fault": "reboot", "target": "ap-pendopo-01", "duration_s": 30}    down for 30 s, then uptime and
                                                                        counters start again from 0
    {"fault": "cpu_high", "target": "...", "duration_s": 600}           CPU ~97%
    {"fault": "memory_high", "target": "...", "duration_s": 600}        memory ~97.5%
    {"fault": "clear", "target": "..."}                                 ends every fault of the target

Environment: WIFI_SIM_HEARTBEAT_S (10), WIFI_SIM_SITES (comma separated site ids; all),
WIFI_SIM_AP_COUNT (0: the inventory's APs; more: copies of them at copies of their sites, for
load at city scale), WIFI_SIM_SEED (random), WIFI_SIM_LOAD (demand multiplier, 1.0; it also sizes the
pool of returning phones), WIFI_SIM_MEAN_SESSION_S (1500),
WIFI_SIM_BATCHES (true: one ApTelemetryBatch / ClientSessionBatch per site and interval, as a
site controller sends them; false: one message per reading),
SIM_CONTROL_PORT (9111, 0 = any free port), SIM_CONTROL_HOST (127.0.0.1), plus the platform's
KAFKA_BOOTSTRAP_SERVERS, SMARTCITY_TOPIC_PREFIX and WIFI_CLIENT_HASH_SALT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import signal
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from smartcity.codec import set_timestamp
from smartcity.inventory import AccessPointInfo, access_points, inventory_site, scaled_devices, site
from smartcity.observability import configure_logging
from smartcity.settings import PlatformSettings, env_bool, env_float, env_int, env_str
from smartcity.simcontrol import ControlServer
from smartcity.v1 import common_pb2, wifi_pb2
from wifi_telemetry.edge.readings import EdgeCollector
from wifi_telemetry.sim.usage import demand

log = logging.getLogger("wifi_telemetry.sim.simulator")

FAULTS = ("offline", "reboot", "cpu_high", "memory_high", "clear")
Reading = dict[str, Any]
RADIOS = (("2.4GHz", 6, -90), ("5GHz", 36, -95))  # every simulated AP's radios: band, channel, noise


@dataclass
class Client:
    mac: str
    session_id: str
    connected_at: float
    down_bps: float
    up_bps: float
    # The AP's online clock when the client joined: its byte totals are its rates times the time
    # since (time offline carries no traffic), so no step walks every client to count bytes.
    joined_online_s: float = 0.0

    def rx(self, online_s: float) -> int:
        return int(self.up_bps * (online_s - self.joined_online_s) / 8)

    def tx(self, online_s: float) -> int:
        return int(self.down_bps * (online_s - self.joined_online_s) / 8)


class Heartbeat(NamedTuple):
    """What changes from one heartbeat of an AP to the next (the rest is its inventory)."""

    seq: int
    observed_time: float
    uptime_seconds: int
    cpu_percent: float
    memory_percent: float
    clients: int
    rx_bytes: int
    tx_bytes: int
    clients_2g: int
    clients_5g: int
    utilization_2g: float
    utilization_5g: float


@dataclass
class SimulatedAp:
    info: AccessPointInfo
    kind: str
    seq: int
    boot_time: float
    cpu_base: float
    mem_base: float
    firmware: str
    rx: int = 0
    tx: int = 0
    clients: dict[str, Client] = field(default_factory=dict)
    up_bps: float = 0.0  # the sum of its clients' rates, kept as they come and go
    down_bps: float = 0.0
    online_s: float = 0.0  # seconds stepped while online (the clock of its clients' bytes)
    offline_until: float | None = None
    cpu_high_until: float | None = None
    mem_high_until: float | None = None
    last_step: float | None = None

    def faults(self, now: float) -> list[dict[str, Any]]:
        active = []
        for name, until in (("offline", self.offline_until), ("cpu_high", self.cpu_high_until),
                            ("memory_high", self.mem_high_until)):
            if until is not None and until > now:
                active.append({"fault": name, "target": self.info.ap_id,
                               "remaining_s": None if math.isinf(until) else round(until - now, 1)})
        return active


class WifiCity:
    """The simulated fleet; `step(now)` advances it and returns the readings to send.

    No Kafka here: the simulator sends the readings, tests and benchmarks step it with their
    own clock to make reproducible traffic.
    """

    def __init__(self, aps: Sequence[AccessPointInfo], *, seed: int | None = None, start: float | None = None,
                 load: float = 1.0, mean_session_s: float = 1500.0) -> None:
        self.rng = random.Random(seed)
        now = time.time() if start is None else start
        self.load = load
        self.mean_session_s = mean_session_s
        # Strictly increasing per AP across simulator restarts: a millisecond clock start.
        seq0 = int(now * 1000)
        self.aps: dict[str, SimulatedAp] = {
            ap.ap_id: SimulatedAp(
                info=ap, kind=site(inventory_site(ap.site_id)).kind, seq=seq0,
                boot_time=now - self.rng.uniform(3600, 30 * 86400),
                cpu_base=self.rng.uniform(8, 25), mem_base=self.rng.uniform(35, 55),
                firmware=self.rng.choice(["OpenWrt 23.05.3", "OpenWrt 23.05.5", "UniFi 6.6.77"]),
                rx=self.rng.randint(10**8, 10**11), tx=self.rng.randint(10**9, 10**12),
            )
            for ap in aps
        }
        # Phones that come back: a pool per site, about four times the clients it sees at peak.
        self.pools: dict[str, list[str]] = {}
        for ap in aps:
            pool_size = max(4, round(4 * ap.capacity * min(1.0, load)))
            self.pools.setdefault(ap.site_id, []).extend(self._new_mac() for _ in range(pool_size))
        self._lock = threading.Lock()

    # -- faults ------------------------------------------------------------------------------

    def targets(self, target: str) -> list[SimulatedAp]:
        if target == "all":
            return list(self.aps.values())
        if target in self.aps:
            return [self.aps[target]]
        found = [ap for ap in self.aps.values() if ap.info.site_id == target]
        if not found:
            raise ValueError(f"unknown target {target!r}: use an ap_id, a site_id or 'all'")
        return found

    def apply_fault(self, command: dict[str, Any], now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        fault = command.get("fault")
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        duration = command.get("duration_s")
        until = math.inf if duration is None else now + float(duration)
        with self._lock:
            aps = self.targets(str(command.get("target", "")))
            for ap in aps:
                self._apply_fault(ap, str(fault), until, now, float(duration or 0.0))
        return {"ok": True, "fault": fault, "targets": [ap.info.ap_id for ap in aps]}

    def _apply_fault(self, ap: SimulatedAp, fault: str, until: float, now: float, duration: float) -> None:
        if fault == "offline":
            ap.offline_until = until
        elif fault == "cpu_high":
            ap.cpu_high_until = until
        elif fault == "memory_high":
            ap.mem_high_until = until
        elif fault == "reboot":
            ap.offline_until = now + duration if duration > 0 else None
            ap.boot_time = now + duration
            ap.rx = ap.tx = 0
            ap.up_bps = ap.down_bps = 0.0
            ap.clients.clear()  # their disconnects are lost with the reboot, as on a real AP
        else:  # clear
            ap.offline_until = ap.cpu_high_until = ap.mem_high_until = None

    def active_faults(self, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        with self._lock:
            return [f for ap in self.aps.values() for f in ap.faults(now)]

    # -- time passing ----------------------------------------------------------------------------

    def step(self, now: float) -> tuple[list[Reading], list[Reading]]:
        """Advances every AP to `now`: (telemetry readings, session readings)."""
        beats, sessions = self._advance(now)
        return [self._reading(ap, beat) for ap, beat in beats], sessions

    def step_batches(self, now: float, batches: SiteBatches) -> tuple[list[wifi_pb2.ApTelemetryBatch],
                                                                       list[Reading]]:
        """Advances every AP to `now` like `step`, its telemetry as one ApTelemetryBatch per
        site (kept by `batches` from one step to the next and changed in place: what a site
        controller sends, at a fraction of the cost of building every reading anew)."""
        beats, sessions = self._advance(now)
        return batches.update(beats), sessions

    def _advance(self, now: float) -> tuple[list[tuple[SimulatedAp, Heartbeat]], list[Reading]]:
        beats: list[tuple[SimulatedAp, Heartbeat]] = []
        sessions: list[Reading] = []
        demands: dict[str, float] = {}  # by kind of site: the same for every AP of a kind
        with self._lock:
            for ap in self.aps.values():
                if ap.offline_until is not None and now < ap.offline_until:
                    ap.last_step = now  # the time passes unseen: nothing to report
                    continue
                dt = now - ap.last_step if ap.last_step is not None else 0.0
                ap.last_step = now
                busy = demands.get(ap.kind)
                if busy is None:
                    busy = demands[ap.kind] = demand(ap.kind, now)
                sessions += self._churn(ap, now, dt, busy)
                self._traffic(ap, dt)
                beats.append((ap, self._heartbeat(ap, now)))
        return beats, sessions

    def _churn(self, ap: SimulatedAp, now: float, dt: float, busy: float) -> list[Reading]:
        target = ap.info.capacity * min(1.0, busy * self.load) * self.rng.uniform(0.9, 1.1)
        out: list[Reading] = []
        leave_p = min(1.0, dt / self.mean_session_s) if dt > 0 else 0.0
        for mac in self._leaving(ap, leave_p):
            out.append(self._session(ap, self._disconnect(ap, mac), "disconnect", now))
        # Arrivals keep the AP near its target: steady turnover plus catching up.
        rate = target * leave_p + max(0.0, target - len(ap.clients)) * (min(1.0, dt / 120) if dt > 0 else 1.0)
        for _ in range(self._poisson(rate)):
            if len(ap.clients) >= ap.info.capacity:
                break
            mac = self._arriving_mac(ap)
            down = self.rng.lognormvariate(math.log(250_000), 0.9)
            client = Client(mac, uuid.UUID(int=self.rng.getrandbits(128)).hex[:16], now, down,
                            down * self.rng.uniform(0.1, 0.3), joined_online_s=ap.online_s)
            ap.clients[mac] = client
            ap.up_bps, ap.down_bps = ap.up_bps + client.up_bps, ap.down_bps + client.down_bps
            out.append(self._session(ap, client, "connect", now))
        return out

    def _leaving(self, ap: SimulatedAp, leave_p: float) -> list[str]:
        """The clients that leave this step, each with probability leave_p: their count drawn
        once (Poisson, close to the binomial for a step's small probability), not a draw each."""
        if leave_p >= 1.0:
            return list(ap.clients)
        count = min(len(ap.clients), self._poisson(len(ap.clients) * leave_p))
        return self.rng.sample(list(ap.clients), count) if count else []

    def _arriving_mac(self, ap: SimulatedAp) -> str:
        pool = self.pools[ap.info.site_id]
        for _ in range(5):
            mac = self.rng.choice(pool) if self.rng.random() < 0.75 else self._new_mac()
            if mac not in ap.clients:
                return mac
        return self._new_mac()

    @staticmethod
    def _disconnect(ap: SimulatedAp, mac: str) -> Client:
        client = ap.clients.pop(mac)
        if ap.clients:
            ap.up_bps, ap.down_bps = ap.up_bps - client.up_bps, ap.down_bps - client.down_bps
        else:
            ap.up_bps = ap.down_bps = 0.0  # no drift left over from the sums
        return client

    @staticmethod
    def _traffic(ap: SimulatedAp, dt: float) -> None:
        ap.online_s += dt
        ap.rx, ap.tx = ap.rx + int(ap.up_bps * dt / 8), ap.tx + int(ap.down_bps * dt / 8)

    def _heartbeat(self, ap: SimulatedAp, now: float) -> Heartbeat:
        ap.seq += 1
        clients = len(ap.clients)
        load = clients / max(1, ap.info.capacity)
        cpu = ap.cpu_base + 45 * load + self.rng.gauss(0, 3)
        mem = ap.mem_base + 20 * load + self.rng.gauss(0, 1.5)
        if ap.cpu_high_until is not None and now < ap.cpu_high_until:
            cpu = self.rng.uniform(96, 99)
        if ap.mem_high_until is not None and now < ap.mem_high_until:
            mem = self.rng.uniform(97, 98.5)
        on_5ghz = round(clients * 0.65)
        return Heartbeat(ap.seq, now, max(0, int(now - ap.boot_time)), round(min(100, max(0, cpu)), 1),
                         round(min(100, max(0, mem)), 1), clients, ap.rx, ap.tx, clients - on_5ghz, on_5ghz,
                         round(min(1.0, 0.1 + 0.6 * load), 3), round(min(1.0, 0.05 + 0.5 * load), 3))

    @staticmethod
    def _reading(ap: SimulatedAp, beat: Heartbeat) -> Reading:
        return {
            "ap_id": ap.info.ap_id, "site_id": ap.info.site_id, "seq": beat.seq,
            "observed_time": beat.observed_time, "uptime_seconds": beat.uptime_seconds,
            "cpu_percent": beat.cpu_percent, "memory_percent": beat.memory_percent, "clients": beat.clients,
            "rx_bytes": beat.rx_bytes, "tx_bytes": beat.tx_bytes, "firmware": ap.firmware,
            "name": ap.info.name,
            "latitude": ap.info.latitude, "longitude": ap.info.longitude,
            "radios": [
                {"band": band, "channel": channel, "noise_dbm": noise, "clients": clients,
                 "channel_utilization_ratio": utilization}
                for (band, channel, noise), clients, utilization in (
                    (RADIOS[0], beat.clients_2g, beat.utilization_2g),
                    (RADIOS[1], beat.clients_5g, beat.utilization_5g))
            ],
        }

    @staticmethod
    def _session(ap: SimulatedAp, client: Client, kind: str, now: float) -> Reading:
        closing = kind == "disconnect"
        return {"ap_id": ap.info.ap_id, "site_id": ap.info.site_id, "kind": kind, "client_mac": client.mac,
                "event_time": now, "session_id": client.session_id,
                "rx_bytes": client.rx(ap.online_s) if closing else 0,
                "tx_bytes": client.tx(ap.online_s) if closing else 0}

    def _new_mac(self) -> str:
        # Locally administered, unicast: what phones with MAC randomisation present.
        first = (self.rng.getrandbits(8) & 0b11111100) | 0b00000010
        rest = [self.rng.getrandbits(8) for _ in range(5)]
        return ":".join(f"{b:02x}" for b in [first, *rest])

    def _poisson(self, rate: float) -> int:
        if rate <= 0:
            return 0
        if rate > 30:
            return max(0, round(self.rng.gauss(rate, math.sqrt(rate))))
        limit, k, p = math.exp(-rate), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1


class SiteBatches:
    """Each site's ApTelemetryBatch, kept from one step to the next: a heartbeat sets the fields
    that change (`Heartbeat`) on its AP's reading in place; a site's batch is made anew only
    when the set of its APs that report changes (one offline, one back). A returned batch is
    changed by the next `update`: serialise it before."""

    def __init__(self) -> None:
        self._sites: dict[str, tuple[tuple[str, ...], wifi_pb2.ApTelemetryBatch]] = {}

    def update(self, beats: Iterable[tuple[SimulatedAp, Heartbeat]]) -> list[wifi_pb2.ApTelemetryBatch]:
        by_site: dict[str, list[tuple[SimulatedAp, Heartbeat]]] = {}
        for ap, beat in beats:
            by_site.setdefault(ap.info.site_id, []).append((ap, beat))
        batches = []
        for site_id, members in by_site.items():
            reporting = tuple(ap.info.ap_id for ap, _ in members)
            kept = self._sites.get(site_id)
            if kept is None or kept[0] != reporting:
                kept = self._sites[site_id] = (reporting, self._new_batch(site_id, [ap for ap, _ in members]))
            batch = kept[1]
            for reading, (_, beat) in zip(batch.readings, members, strict=True):
                self._set(reading, beat)
            batches.append(batch)
        return batches

    @staticmethod
    def _new_batch(site_id: str, aps: Sequence[SimulatedAp]) -> wifi_pb2.ApTelemetryBatch:
        batch = wifi_pb2.ApTelemetryBatch(site_id=site_id)
        for ap in aps:  # what does not change between heartbeats (the firmware of a simulated AP neither)
            batch.readings.add(
                ap_id=ap.info.ap_id, site_id=site_id, firmware=ap.firmware, name=ap.info.name,
                location=common_pb2.GeoPoint(latitude=ap.info.latitude, longitude=ap.info.longitude),
                radios=[wifi_pb2.RadioStats(band=band, channel=channel, noise_dbm=noise)
                        for band, channel, noise in RADIOS])
        return batch

    @staticmethod
    def _set(reading: wifi_pb2.ApTelemetry, beat: Heartbeat) -> None:
        reading.seq = beat.seq
        set_timestamp(reading.observed_time, beat.observed_time)
        reading.uptime_seconds, reading.cpu_percent = beat.uptime_seconds, beat.cpu_percent
        reading.memory_percent, reading.clients = beat.memory_percent, beat.clients
        reading.rx_bytes, reading.tx_bytes = beat.rx_bytes, beat.tx_bytes
        radio_2g, radio_5g = reading.radios
        radio_2g.clients, radio_2g.channel_utilization_ratio = beat.clients_2g, beat.utilization_2g
        radio_5g.clients, radio_5g.channel_utilization_ratio = beat.clients_5g, beat.utilization_5g


def selected_access_points(sites: str) -> list[AccessPointInfo]:
    wanted = {s.strip() for s in sites.split(",") if s.strip()}
    aps = [ap for ap in access_points() if not wanted or ap.site_id in wanted]
    if not aps:
        raise SystemExit(f"WIFI_SIM_SITES={sites!r} matches no site of the inventory")
    return aps


def scaled_access_points(aps: Sequence[AccessPointInfo], count: int) -> list[AccessPointInfo]:
    """`count` APs at city scale (smartcity.inventory.scaled_devices)."""
    return scaled_devices(aps, count, "ap_id")


async def send_step(collector: EdgeCollector, city: WifiCity, now: float,
                    batches: SiteBatches | None) -> None:
    """Steps the city to `now` and sends what it reported: one batch message per site and kind
    (the default, WIFI_SIM_BATCHES), or one message per reading (`batches` None)."""
    if batches is not None:
        telemetry_batches, sessions = city.step_batches(now, batches)
        await collector.send_telemetry_batches(telemetry_batches)
        await collector.send_session_batches(sessions)
    else:
        telemetry, sessions = city.step(now)
        for reading in sessions:
            await collector.send_session(reading)
        for reading in telemetry:
            await collector.send_telemetry(reading)
    await collector.flush()


async def run(settings: PlatformSettings) -> None:
    interval = env_float("WIFI_SIM_HEARTBEAT_S", 10.0)
    batches = env_bool("WIFI_SIM_BATCHES", True)
    seed_raw = env_str("WIFI_SIM_SEED", "")
    aps = scaled_access_points(selected_access_points(env_str("WIFI_SIM_SITES", "")),
                               env_int("WIFI_SIM_AP_COUNT", 0))
    city = WifiCity(aps,
                    seed=int(seed_raw) if seed_raw else None, load=env_float("WIFI_SIM_LOAD", 1.0),
                    mean_session_s=env_float("WIFI_SIM_MEAN_SESSION_S", 1500.0))
    control = ControlServer(env_str("SIM_CONTROL_HOST", "127.0.0.1"), env_int("SIM_CONTROL_PORT", 9111),
                            city.apply_fault, city.active_faults).start()
    collector = await EdgeCollector(settings).start()
    site_batches = SiteBatches() if batches else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("wifi simulator: %d APs at %d sites, heartbeat every %.1fs, fault control on port %d",
             len(city.aps), len({a.info.site_id for a in city.aps.values()}), interval, control.port)
    try:
        while not stop.is_set():
            started = time.time()
            await send_step(collector, city, started, site_batches)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, interval - (time.time() - started)))
    finally:
        control.stop()
        await collector.stop()
        log.info("wifi simulator stopped")


def main() -> None:
    settings = PlatformSettings.from_env("wifi-simulator")
    configure_logging(settings)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
