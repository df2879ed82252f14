"""The simulated citizens and staff (no Kafka): rates, plans, faults, and that what they send
makes sense to the service."""

from __future__ import annotations

import random
import time

import pytest

from citizen_requests.config import load_config
from citizen_requests.core.ledger import Ledger
from citizen_requests.core.routing import RequestsConfig, SlaRule
from citizen_requests.sim.behaviour import (
    DAILY_VOLUME,
    StaffHabits,
    poisson,
    rate_per_second,
    staff_plan,
)
from citizen_requests.sim.simulator import CitizensSimulator
from smartcity.v1 import requests_pb2 as pb

T0 = 1_767_236_400.0  # 10:00 WIB


@pytest.fixture(scope="module")
def config() -> RequestsConfig:
    return load_config()


def test_hourly_rates_add_up_to_the_daily_volume() -> None:
    for category, volume in DAILY_VOLUME.items():
        per_day = sum(rate_per_second(category, hour, 1.0) * 3600 for hour in range(24))
        assert per_day == pytest.approx(volume)
        assert rate_per_second(category, 10, 5.0) == pytest.approx(5 * rate_per_second(category, 10, 1.0))
    assert rate_per_second("permits", 3, 1.0) < rate_per_second("permits", 10, 1.0) / 10  # offices closed


def test_poisson_draws_have_the_right_mean() -> None:
    rng = random.Random(1)
    draws = [poisson(rng, 0.7) for _ in range(20_000)]
    assert sum(draws) / len(draws) == pytest.approx(0.7, rel=0.05)
    assert poisson(rng, 0) == 0


def test_staff_are_mostly_in_time_and_sometimes_late() -> None:
    rng = random.Random(2)
    sla = SlaRule(acknowledge_s=300, resolve_s=3600)
    plans = [staff_plan(rng, "roads", sla) for _ in range(2000)]
    acks = [p[0].after_s for p in plans]
    late = sum(a > 300 for a in acks) / len(acks)
    assert 0.06 < late < 0.2
    resolved = [next(s.after_s for s in p if s.action == "resolve") for p in plans
                if any(s.action == "resolve" for s in p)]
    assert 0.5 < sum(r <= 3600 for r in resolved) / len(resolved) < 0.97
    assert all([s.after_s for s in p] == sorted(s.after_s for s in p) for p in plans)
    never_late = [staff_plan(rng, "roads", sla, StaffHabits(late_share=0.0)) for _ in range(200)]
    assert all(p[0].after_s <= 300 for p in never_late)
    slow = staff_plan(random.Random(3), "roads", sla, slowness=10)
    assert slow[0].after_s == pytest.approx(10 * staff_plan(random.Random(3), "roads", sla)[0].after_s)


def test_everything_the_simulator_sends_is_valid_for_the_service(config: RequestsConfig) -> None:
    """A day of simulated traffic through the domain: no malformed submit, no impossible step."""
    sim = CitizensSimulator(config, random.Random(4), multiplier=15.0)
    ledger = Ledger(config)
    rejected = []
    now = T0
    for _ in range(12 * 60):  # half a day, a minute per tick
        now += 60
        for command in sim.tick(now, 60):
            for event in ledger.command(command).events:
                if event.type == pb.REQUEST_EVENT_TYPE_COMMAND_REJECTED:
                    rejected.append(event.rejection_reason)
    assert rejected == []
    requests = ledger.requests().values()
    assert len(requests) > 500
    assert {r.category for r in requests} >= {"permits", "roads", "waste", "health_info", "emergency"}
    statuses = {r.status for r in requests}
    assert {pb.REQUEST_STATUS_SUBMITTED, pb.REQUEST_STATUS_CLOSED, pb.REQUEST_STATUS_REJECTED} <= statuses


def test_an_emergency_burst_is_reported_close_together_and_flagged(config: RequestsConfig) -> None:
    sim = CitizensSimulator(config, random.Random(5), multiplier=0.0)
    reply = sim.handle_fault({"fault": "emergency_burst", "count": 20, "area": "alun-alun", "spread_s": 5})
    assert reply["scheduled"] == 20 and sim.active_faults()[0]["pending"] == 20
    commands = sim.tick(T0 + 10**10, 1)  # far in the future: every burst report is due
    submits = [c for c in commands if c.WhichOneof("action") == "submit"]
    assert len(submits) == 20 and {c.submit.category for c in submits} == {"emergency"}
    assert all("anjir" in c.submit.description or "air" in c.submit.description.lower() for c in submits)
    ledger = Ledger(config)
    for command in submits:
        ledger.command(command)
    flagged = [s for s in ledger.requests().values() if s.possible_duplicate_of]
    assert len(flagged) >= 15


def test_staff_slow_stretches_pending_work_and_clear_ends_it(config: RequestsConfig) -> None:
    sim = CitizensSimulator(config, random.Random(6), multiplier=0.0)
    sim.handle_fault({"fault": "emergency_burst", "count": 5, "area": "rsud", "spread_s": 0})
    now = time.time()
    sim.tick(now + 1, 1)
    first_due = min(due for due, _, _ in sim._queue)
    sim.handle_fault({"fault": "staff_slow", "opd": "BPBD", "factor": 10, "duration_s": 60})
    assert min(due for due, _, _ in sim._queue) > now + (first_due - now) * 5
    assert [f["fault"] for f in sim.active_faults()] == ["staff_slow"]
    sim.handle_fault({"fault": "clear"})
    assert sim.active_faults() == []
    with pytest.raises(ValueError):
        sim.handle_fault({"fault": "meteor"})
