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
from typing import Any

from smartcity.inventory import AccessPointInfo, access_points, inventory_site, scaled_devices, site
from smartcity.observability import configure_logging
from smartcity.settings import PlatformSettings, env_bool, env_float, env_int, env_str
from smartcity.simcontrol import ControlServer
from wifi_telemetry.edge.readings import EdgeCollector
from wifi_telemetry.sim.usage import demand

log = logging.getLogger("wifi_telemetry.sim.simulator")

FAULTS = ("offline", "reboot", "cpu_high", "memory_high", "clear")
Reading = dict[str, Any]


@dataclass
class Client:
    mac: str
    session_id: str
    connected_at: float
    down_bps: float
    up_bps: float
    rx: int = 0
    tx: int = 0


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
        telemetry: list[Reading] = []
        sessions: list[Reading] = []
        with self._lock:
            for ap in self.aps.values():
                if ap.offline_until is not None and now < ap.offline_until:
                    ap.last_step = now  # the time passes unseen: nothing to report
                    continue
                dt = now - ap.last_step if ap.last_step is not None else 0.0
                ap.last_step = now
                sessions += self._churn(ap, now, dt)
                self._traffic(ap, dt)
                telemetry.append(self._heartbeat(ap, now))
        return telemetry, sessions

    def _churn(self, ap: SimulatedAp, now: float, dt: float) -> list[Reading]:
        target = ap.info.capacity * min(1.0, demand(ap.kind, now) * self.load) * self.rng.uniform(0.9, 1.1)
        out: list[Reading] = []
        leave_p = min(1.0, dt / self.mean_session_s) if dt > 0 else 0.0
        for mac in [m for m in ap.clients if self.rng.random() < leave_p]:
            out.append(self._session(ap, ap.clients.pop(mac), "disconnect", now))
        # Arrivals keep the AP near its target: steady turnover plus catching up.
        rate = target * leave_p + max(0.0, target - len(ap.clients)) * (min(1.0, dt / 120) if dt > 0 else 1.0)
        for _ in range(self._poisson(rate)):
            if len(ap.clients) >= ap.info.capacity:
                break
            mac = self._arriving_mac(ap)
            down = self.rng.lognormvariate(math.log(250_000), 0.9)
            client = Client(mac, uuid.UUID(int=self.rng.getrandbits(128)).hex[:16], now, down,
                            down * self.rng.uniform(0.1, 0.3))
            ap.clients[mac] = client
            out.append(self._session(ap, client, "connect", now))
        return out

    def _arriving_mac(self, ap: SimulatedAp) -> str:
        pool = self.pools[ap.info.site_id]
        for _ in range(5):
            mac = self.rng.choice(pool) if self.rng.random() < 0.75 else self._new_mac()
            if mac not in ap.clients:
                return mac
        return self._new_mac()

    def _traffic(self, ap: SimulatedAp, dt: float) -> None:
        for client in ap.clients.values():
            down, up = int(client.down_bps * dt / 8), int(client.up_bps * dt / 8)
            client.rx, client.tx = client.rx + up, client.tx + down
            ap.rx, ap.tx = ap.rx + up, ap.tx + down

    def _heartbeat(self, ap: SimulatedAp, now: float) -> Reading:
        ap.seq += 1
        load = len(ap.clients) / max(1, ap.info.capacity)
        cpu = ap.cpu_base + 45 * load + self.rng.gauss(0, 3)
        mem = ap.mem_base + 20 * load + self.rng.gauss(0, 1.5)
        if ap.cpu_high_until is not None and now < ap.cpu_high_until:
            cpu = self.rng.uniform(96, 99)
        if ap.mem_high_until is not None and now < ap.mem_high_until:
            mem = self.rng.uniform(97, 98.5)
        on_5ghz = round(len(ap.clients) * 0.65)
        return {
            "ap_id": ap.info.ap_id, "site_id": ap.info.site_id, "seq": ap.seq, "observed_time": now,
            "uptime_seconds": max(0, int(now - ap.boot_time)), "cpu_percent": round(min(100, max(0, cpu)), 1),
            "memory_percent": round(min(100, max(0, mem)), 1), "clients": len(ap.clients),
            "rx_bytes": ap.rx, "tx_bytes": ap.tx, "firmware": ap.firmware, "name": ap.info.name,
            "latitude": ap.info.latitude, "longitude": ap.info.longitude,
            "radios": [
                {"band": "2.4GHz", "channel": 6, "noise_dbm": -90, "clients": len(ap.clients) - on_5ghz,
                 "channel_utilization_ratio": round(min(1.0, 0.1 + 0.6 * load), 3)},
                {"band": "5GHz", "channel": 36, "noise_dbm": -95, "clients": on_5ghz,
                 "channel_utilization_ratio": round(min(1.0, 0.05 + 0.5 * load), 3)},
            ],
        }

    @staticmethod
    def _session(ap: SimulatedAp, client: Client, kind: str, now: float) -> Reading:
        closing = kind == "disconnect"
        return {"ap_id": ap.info.ap_id, "site_id": ap.info.site_id, "kind": kind, "client_mac": client.mac,
                "event_time": now, "session_id": client.session_id,
                "rx_bytes": client.rx if closing else 0, "tx_bytes": client.tx if closing else 0}

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


def selected_access_points(sites: str) -> list[AccessPointInfo]:
    wanted = {s.strip() for s in sites.split(",") if s.strip()}
    aps = [ap for ap in access_points() if not wanted or ap.site_id in wanted]
    if not aps:
        raise SystemExit(f"WIFI_SIM_SITES={sites!r} matches no site of the inventory")
    return aps


def scaled_access_points(aps: Sequence[AccessPointInfo], count: int) -> list[AccessPointInfo]:
    """`count` APs at city scale (smartcity.inventory.scaled_devices)."""
    return scaled_devices(aps, count, "ap_id")


async def send_readings(collector: EdgeCollector, telemetry: Iterable[Reading],
                        sessions: Iterable[Reading], *, batches: bool = True) -> None:
    """One batch message per site and kind (the default, WIFI_SIM_BATCHES), or one per reading."""
    if batches:
        await collector.send_batches(telemetry, sessions)
    else:
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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("wifi simulator: %d APs at %d sites, heartbeat every %.1fs, fault control on port %d",
             len(city.aps), len({a.info.site_id for a in city.aps.values()}), interval, control.port)
    try:
        while not stop.is_set():
            started = time.time()
            telemetry, sessions = city.step(started)
            await send_readings(collector, telemetry, sessions, batches=batches)
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
