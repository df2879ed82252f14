"""Possible-duplicate flagging (no Kafka)."""

from __future__ import annotations

import pytest

from citizen_requests.config import load_config
from citizen_requests.core.duplicates import OpenRequestIndex, candidate_of, find_possible_duplicates
from citizen_requests.core.ledger import Ledger
from citizen_requests.core.routing import RequestsConfig
from citizen_requests.sim.command_builders import STAFF, action_command, actor, submit_command
from smartcity.v1 import requests_pb2 as pb

T0 = 1_767_225_600.0
ALUN_ALUN = (-7.38830, 109.36390)


@pytest.fixture(scope="module")
def config() -> RequestsConfig:
    return load_config()


def report(key: str, at: float = T0, category: str = "emergency",
           lat_offset: float = 0.0) -> pb.RequestCommand:
    return submit_command(client_id="sim-citizens", idempotency_key=key, category=category,
                          description="Banjir setinggi lutut", issued_at=at,
                          latitude=ALUN_ALUN[0] + lat_offset, longitude=ALUN_ALUN[1])


def test_a_nearby_open_report_of_the_same_category_is_flagged(config: RequestsConfig) -> None:
    ledger = Ledger(config)
    first = ledger.command(report("a")).state
    assert first is not None and list(first.possible_duplicate_of) == []
    # ~55 m north, ten minutes later: the same flood.
    second = ledger.command(report("b", T0 + 600, lat_offset=0.0005)).state
    assert second is not None and list(second.possible_duplicate_of) == [first.request_id]
    assert "possible duplicate of" in second.history[0].note


@pytest.mark.parametrize(("change", "why"), [
    ({"lat_offset": 0.01}, "1.1 km away"),
    ({"category": "roads"}, "another category"),
    ({"at": T0 + 2 * 86400}, "outside the time window"),
])
def test_unrelated_reports_are_not_flagged(config: RequestsConfig, change: dict[str, object],
                                          why: str) -> None:
    ledger = Ledger(config)
    ledger.command(report("a"))
    second = ledger.command(report("b", **change)).state  # type: ignore[arg-type]
    assert second is not None and list(second.possible_duplicate_of) == [], why


def test_closed_requests_are_no_longer_candidates(config: RequestsConfig) -> None:
    ledger = Ledger(config)
    first = ledger.command(report("a")).state
    assert first is not None
    by = actor(STAFF, "x", "BPBD")
    ledger.command(action_command(first.request_id, "reject", issued_at=T0 + 1, by=by, client_id="c",
                                  reason="laporan palsu"))
    second = ledger.command(report("b", T0 + 60)).state
    assert second is not None and list(second.possible_duplicate_of) == []


def test_nearest_first_and_at_most_five(config: RequestsConfig) -> None:
    ledger = Ledger(config)
    ids = [ledger.command(report(f"k{i}", lat_offset=0.0001 * (6 - i))).state for i in range(7)]
    newest = ledger.command(report("last")).state
    assert newest is not None
    expected = [r.request_id for r in reversed(ids) if r is not None][:5]
    assert list(newest.possible_duplicate_of) == expected


def test_the_index_keeps_the_newest_version_and_drops_closed_ones() -> None:
    index = OpenRequestIndex()
    req = pb.ServiceRequest(request_id="r1", category="fire", version=2, status=pb.REQUEST_STATUS_SUBMITTED)
    req.location.latitude, req.location.longitude = ALUN_ALUN
    index.observe(req)
    assert [c.request_id for c in index.candidates("fire")] == ["r1"]
    closed = pb.ServiceRequest()
    closed.CopyFrom(req)
    closed.version, closed.status = 3, pb.REQUEST_STATUS_RESOLVED
    index.observe(closed)
    index.observe(req)  # an older version arriving late does not bring it back
    assert list(index.candidates("fire")) == [] and len(index) == 0
    no_location = pb.ServiceRequest(request_id="r2", category="fire", version=1)
    assert candidate_of(no_location) is None
    assert find_possible_duplicates(no_location, [], 100, 100) == []
