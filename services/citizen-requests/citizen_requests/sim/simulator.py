"""The citizens and OPD staff of Purbalingga, writing RequestCommands to requests.commands.v1.

    python -m citizen_requests.sim.simulator

It plays both the citizens' channel (client "sim-citizens") and each OPD's system
("sim-<opd>"): citizens report at realistic rates per category and hour of day, and the routed
OPD's staff move each request through its lifecycle (see behaviour.py), some late.

Environment (besides KAFKA_BOOTSTRAP_SERVERS and SMARTCITY_TOPIC_PREFIX):
    SIM_RATE_MULTIPLIER   arrival rate x this (default 1: ~200 requests a day; 50 for a lively demo)
    SIM_CONTROL_PORT      fault-control endpoint (default 9113, 0 = off), SIM_CONTROL_HOST (127.0.0.1)
    SIM_TICK_S            scheduling step in seconds (default 1)
    SIM_SEED              random seed (default: none)
    SIM_DURATION_S        stop after this many seconds (default 0 = run until SIGTERM)
    REQUESTS_SLA_SCALE    the staff plan against the SLAs the service uses: scale both the same

Faults (POST /faults on the control port):
    {"fault": "emergency_burst", "count": 20, "area": "alun-alun", "spread_s": 10}
        a burst of emergency reports close together (a flood): `area` is an inventory site id,
        optional "category" (default emergency), "radius_m" (default 80)
    {"fault": "staff_slow", "opd": "PUPR", "factor": 5, "duration_s": 600}
        that OPD's staff (all OPDs without "opd") take `factor` times longer, pending work too
    {"fault": "rate", "multiplier": 20}      change the arrival rate
    {"fault": "clear"}                       end staff_slow and restore the arrival rate
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from citizen_requests.config import load_config
from citizen_requests.core.routing import RequestsConfig
from citizen_requests.sim.behaviour import (
    DAILY_VOLUME,
    FLOOD_DESCRIPTIONS,
    Report,
    StaffStep,
    make_report,
    plan_for,
    poisson,
    rate_per_second,
)
from citizen_requests.sim.command_builders import STAFF, action_command, actor, submit_command
from smartcity.inventory import site
from smartcity.kafka import make_producer
from smartcity.observability import configure_logging
from smartcity.settings import PlatformSettings, env_float, env_int, env_str
from smartcity.simcontrol import ControlServer
from smartcity.topics import load_catalogue
from smartcity.v1 import requests_pb2 as pb

SIMULATOR = "citizens-simulator"
CITIZENS = "sim-citizens"
WIB_OFFSET_S = 7 * 3600

log = logging.getLogger(SIMULATOR)


@dataclass(frozen=True)
class PendingStep:
    request_id: str
    opd: str
    step: StaffStep


class CitizensSimulator:
    """Arrivals, staff plans and faults; `tick(now)` returns the commands due now."""

    def __init__(self, config: RequestsConfig, rng: random.Random, multiplier: float) -> None:
        self.config, self.rng = config, rng
        self.base_multiplier = self.multiplier = multiplier
        self._queue: list[tuple[float, int, PendingStep]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()  # faults arrive on the control server's thread
        self._slow: dict[str, tuple[float, float]] = {}  # opd or "*" -> (factor, until)
        self._bursts: list[tuple[float, Report]] = []
        self.sent: dict[str, int] = {}

    # ---- faults (control thread)

    def handle_fault(self, command: dict[str, Any]) -> dict[str, Any]:
        kind = command.get("fault")
        now = time.time()
        with self._lock:
            if kind == "emergency_burst":
                return self._burst(command, now)
            if kind == "staff_slow":
                return self._staff_slow(command, now)
            if kind == "rate":
                self.multiplier = float(command["multiplier"])
                return {"ok": True, "multiplier": self.multiplier}
            if kind == "clear":
                self._slow.clear()
                self.multiplier = self.base_multiplier
                return {"ok": True}
        raise ValueError(f"unknown fault {kind!r}: use emergency_burst, staff_slow, rate or clear")

    def _burst(self, command: dict[str, Any], now: float) -> dict[str, Any]:
        area = site(str(command.get("area", "alun-alun")))
        count = int(command.get("count", 20))
        category = str(command.get("category", "emergency"))
        if category not in self.config.categories or not 0 < count <= 1000:
            raise ValueError("a burst needs a known category and 1..1000 reports")
        spread = float(command.get("spread_s", 10.0))
        radius = float(command.get("radius_m", 80.0))
        texts = FLOOD_DESCRIPTIONS if category == "emergency" else None
        for _ in range(count):
            report = make_report(self.rng, category, area, radius, texts)
            self._bursts.append((now + self.rng.uniform(0, spread), report))
        return {"ok": True, "scheduled": count, "area": area.site_id}

    def _staff_slow(self, command: dict[str, Any], now: float) -> dict[str, Any]:
        opd = str(command.get("opd", "*")).upper()
        factor = float(command.get("factor", 5.0))
        if factor <= 0:
            raise ValueError("factor must be positive")
        until = now + float(command.get("duration_s", 600.0))
        self._slow[opd] = (factor, until)
        # Work already planned slows down too: what is left of each wait is stretched.
        stretched = [(now + (due - now) * factor if opd in ("*", p.opd) and due > now else due, seq, p)
                     for due, seq, p in self._queue]
        heapq.heapify(stretched)
        self._queue = stretched
        return {"ok": True, "opd": opd, "factor": factor, "until": until}

    def active_faults(self) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            faults: list[dict[str, Any]] = [
                {"fault": "staff_slow", "opd": opd, "factor": f, "remaining_s": round(u - now)}
                for opd, (f, u) in self._slow.items() if u > now]
            if self._bursts:
                faults.append({"fault": "emergency_burst", "pending": len(self._bursts)})
            if self.multiplier != self.base_multiplier:
                faults.append({"fault": "rate", "multiplier": self.multiplier})
        return faults

    def _slowness(self, opd: str, now: float) -> float:
        factor = 1.0
        for key in (opd, "*"):
            slow = self._slow.get(key)
            if slow and slow[1] > now:
                factor *= slow[0]
        return factor

    # ---- the clock (event loop)

    def tick(self, now: float, dt: float) -> list[pb.RequestCommand]:
        """Everything due in the last `dt` seconds: new reports and staff actions."""
        with self._lock:
            hour = time.gmtime(now + WIB_OFFSET_S).tm_hour
            expected = {c: rate_per_second(c, hour, self.multiplier) * dt for c in DAILY_VOLUME}
            reports = [make_report(self.rng, c) for c, mean in expected.items()
                       for _ in range(poisson(self.rng, mean))]
            due_bursts = [r for at, r in self._bursts if at <= now]
            self._bursts = [(at, r) for at, r in self._bursts if at > now]
            commands = [self._submit(report, now) for report in reports + due_bursts]
            while self._queue and self._queue[0][0] <= now:
                _, _, pending = heapq.heappop(self._queue)
                commands.append(self._staff_command(pending, now))
        for command in commands:
            action = command.WhichOneof("action") or "?"
            self.sent[action] = self.sent.get(action, 0) + 1
        return commands

    def _submit(self, report: Report, now: float) -> pb.RequestCommand:
        command = submit_command(
            client_id=CITIZENS, idempotency_key=uuid.uuid4().hex, category=report.category,
            description=report.description, title=report.title, issued_at=now,
            latitude=report.latitude, longitude=report.longitude, address=report.address,
        )
        opd = self.config.opd_for(report.category)
        priority = self.config.default_priority(report.category)
        for step in plan_for(self.rng, self.config, report.category, priority, self._slowness(opd, now)):
            heapq.heappush(self._queue, (now + step.after_s, next(self._seq),
                                         PendingStep(command.request_id, opd, step)))
        return command

    def _staff_command(self, pending: PendingStep, now: float) -> pb.RequestCommand:
        opd = pending.opd
        by = actor(STAFF, f"petugas-{opd.lower()}-{self.rng.randint(1, 4)}", opd)
        fields: dict[str, Any] = dict(pending.step.fields)
        return action_command(pending.request_id, pending.step.action, issued_at=now, by=by,
                              client_id=f"sim-{opd.lower()}", **fields)

    @property
    def pending(self) -> int:
        return len(self._queue)


async def _send_all(producer: AIOKafkaProducer, topic: str, commands: list[pb.RequestCommand]) -> None:
    futures = [await producer.send(topic, key=c.request_id.encode(), value=c.SerializeToString())
               for c in commands]
    if futures:
        await asyncio.gather(*futures)


async def run(settings: PlatformSettings, simulator: CitizensSimulator, tick_s: float,
              duration_s: float) -> None:
    topic = load_catalogue()["requests.commands.v1"].full_name(settings.topic_prefix)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    producer = make_producer(settings)
    await producer.start()
    started = last = last_log = time.time()
    log.info("simulating citizens on %s, rate x%.1f", topic, simulator.multiplier)
    try:
        while not stop.is_set() and (duration_s <= 0 or last - started < duration_s):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_s)
            now = time.time()
            await _send_all(producer, topic, simulator.tick(now, now - last))
            last = now
            if now - last_log >= 60:
                log.info("sent so far %s, %d staff steps pending", dict(sorted(simulator.sent.items())),
                         simulator.pending)
                last_log = now
    finally:
        await producer.stop()


def main() -> None:
    settings = PlatformSettings.from_env(SIMULATOR)
    configure_logging(settings)
    seed = env_str("SIM_SEED", "")
    simulator = CitizensSimulator(load_config(), random.Random(int(seed) if seed else None),
                                  env_float("SIM_RATE_MULTIPLIER", 1.0))
    port = env_int("SIM_CONTROL_PORT", 9113)
    control = None
    if port > 0:
        control = ControlServer(env_str("SIM_CONTROL_HOST", "127.0.0.1"), port, simulator.handle_fault,
                                simulator.active_faults).start()
        log.info("fault control on http://127.0.0.1:%d/faults", control.port)
    try:
        asyncio.run(run(settings, simulator, env_float("SIM_TICK_S", 1.0), env_float("SIM_DURATION_S", 0.0)))
    finally:
        if control is not None:
            control.stop()


if __name__ == "__main__":
    main()
