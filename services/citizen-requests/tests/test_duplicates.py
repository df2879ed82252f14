"""Possible-duplicate flagging (no Kafka): the earliest report of a place is the original."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citizen_requests.config import load_config
from citizen_requests.core.duplicates import Candidate, DuplicateIndex, candidate_of, possible_duplicates
from citizen_requests.core.ledger import Ledger, process_duplicates
from citizen_requests.core.records import RequestRecord
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


def flags(ledger: Ledger, command: pb.RequestCommand) -> list[str]:
    return list(ledger.requests()[command.request_id].possible_duplicate_of)


def test_a_nearby_earlier_report_of_the_same_category_is_flagged(config: RequestsConfig) -> None:
    ledger = Ledger(config)
    first, second = report("a"), report("b", T0 + 600, lat_offset=0.0005)  # ~55 m north, 10 min later
    ledger.command(first)
    ledger.command(second)
    assert flags(ledger, second) == [first.request_id] and flags(ledger, first) == []


def test_the_flags_do_not_depend_on_the_order_in_which_the_reports_arrive(config: RequestsConfig) -> None:
    # Reports of one flood land on different partitions: a worker may read the later one first.
    reports = [report(f"k{i}", T0 + 60 * i, lat_offset=0.0002 * (i % 3)) for i in range(6)]
    in_order, reversed_order = Ledger(config), Ledger(config)
    for command in reports:
        in_order.command(command)
    for command in reversed(reports):
        reversed_order.command(command)
    assert in_order.requests() == reversed_order.requests()
    assert flags(in_order, reports[0]) == [] and len(flags(in_order, reports[5])) == 5


def test_a_tie_in_time_is_broken_by_request_id(config: RequestsConfig) -> None:
    ledger = Ledger(config)
    one, other = report("x"), report("y")
    ledger.command(one)
    ledger.command(other)
    first, second = sorted((one, other), key=lambda c: c.request_id)
    assert flags(ledger, second) == [first.request_id] and flags(ledger, first) == []


@pytest.mark.parametrize(("change", "why"), [
    ({"lat_offset": 0.01}, "1.1 km away"),
    ({"category": "roads"}, "another category"),
    ({"at": T0 + 2 * 86400}, "outside the time window"),
])
def test_unrelated_reports_are_not_flagged(config: RequestsConfig, change: dict[str, object],
                                          why: str) -> None:
    ledger = Ledger(config)
    ledger.command(report("a"))
    second = report("b", **change)  # type: ignore[arg-type]
    ledger.command(second)
    assert flags(ledger, second) == [], why


def test_the_flag_does_not_depend_on_the_earlier_requests_status(config: RequestsConfig) -> None:
    # Whether the first report was already rejected when the second was read is arrival order.
    ledger = Ledger(config)
    first = report("a")
    ledger.command(first)
    by = actor(STAFF, "x", "BPBD")
    rejected = ledger.command(action_command(first.request_id, "reject", issued_at=T0 + 1, by=by,
                                             client_id="c", reason="laporan palsu")).state
    assert rejected is not None and rejected.status == pb.REQUEST_STATUS_REJECTED
    second = report("b", T0 + 60)
    ledger.command(second)
    assert flags(ledger, second) == [first.request_id]


def test_nearest_first_and_at_most_five(config: RequestsConfig) -> None:
    ledger = Ledger(config)
    earlier = [report(f"k{i}", lat_offset=0.0001 * (6 - i)) for i in range(7)]
    for command in earlier:
        ledger.command(command)
    last = report("last", T0 + 1)
    ledger.command(last)
    assert flags(ledger, last) == [c.request_id for c in reversed(earlier)][:5]


def test_the_index_says_whose_flags_a_late_report_changes() -> None:
    index = DuplicateIndex(max_distance_m=150, window_s=3600)

    def candidate(request_id: str, at: float, lat: float = ALUN_ALUN[0]) -> object:
        req = pb.ServiceRequest(request_id=request_id, category="fire", version=1)
        req.requested_time.FromSeconds(int(at))
        req.location.latitude, req.location.longitude = lat, ALUN_ALUN[1]
        return candidate_of(req)

    later, far = candidate("r2", T0 + 60), candidate("r3", T0 + 120, lat=ALUN_ALUN[0] + 0.01)
    assert index.add(later) == {"r2": []}  # type: ignore[arg-type]
    index.add(far)  # type: ignore[arg-type]
    # The earlier report arrives last: it decides its own flags and those of its near neighbour.
    assert index.add(candidate("r1", T0)) == {"r1": [], "r2": ["r1"]}  # type: ignore[arg-type]
    index.discard("r1")
    assert "r1" not in index and len(index) == 2
    assert candidate_of(pb.ServiceRequest(request_id="r4", category="fire", version=1)) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-0.004, 0.004), st.floats(-0.004, 0.004), st.integers(0, 7200),
                          st.sampled_from(["fire", "roads"])), min_size=1, max_size=40),
       st.sampled_from([ALUN_ALUN[0], 0.0, 59.9, -70.0]))
def test_the_grid_index_flags_what_comparing_every_pair_flags(
        points: list[tuple[float, float, int, str]], latitude: float) -> None:
    """Reports scattered over a few cells (at Purbalingga, the equator and far north and south,
    where a degree of longitude is short): the grid finds the same possible duplicates as
    comparing each report with every other."""
    index = DuplicateIndex(max_distance_m=150, window_s=3600)
    everyone: list[Candidate] = []
    for i, (dlat, dlon, dt, category) in enumerate(points):
        candidate = Candidate(f"r{i}", category, latitude + dlat, ALUN_ALUN[1] + dlon, T0 + dt)
        decided = index.add(candidate)
        everyone.append(candidate)
        assert decided[candidate.request_id] == possible_duplicates(candidate, everyone, 150, 3600)
    for candidate in everyone:
        assert index.flags_of(candidate) == possible_duplicates(candidate, everyone, 150, 3600)


def test_flags_a_request_already_carries_publish_its_state_again() -> None:
    # Sent again when the statistics stage finds the request without them: a crash between the
    # record's write and its publication left the published state behind the record.
    request = pb.ServiceRequest(request_id="req-1", version=3, possible_duplicate_of=["req-0"])
    again = process_duplicates(RequestRecord(request), ["req-0"])
    assert not again.record_changed and again.events == []
    assert again.state is not None and list(again.state.possible_duplicate_of) == ["req-0"]
    assert process_duplicates(None, ["req-0"]).state is None  # no such request here: nothing
