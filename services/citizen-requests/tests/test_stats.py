"""Statistics per category and OPD: percentiles, today's counts, idempotent updates (no Kafka)."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from citizen_requests.core.stats import StatsBook, day_of, percentile, stats_key
from smartcity.codec import to_timestamp
from smartcity.v1 import requests_pb2 as pb

# 2026-01-01 10:00 WIB = 03:00 UTC
T0 = 1_767_236_400.0
CATEGORY = (pb.STATS_SCOPE_CATEGORY, "roads")
OPD = (pb.STATS_SCOPE_OPD, "PUPR")


def request(rid: str, version: int, status: int = pb.REQUEST_STATUS_SUBMITTED, *, requested: float = T0,
            acked: float | None = None, resolved: float | None = None, ack_breached: bool = False,
            category: str = "roads", opd: str = "PUPR") -> pb.ServiceRequest:
    req = pb.ServiceRequest(request_id=rid, version=version, status=status, category=category,  # type: ignore[arg-type]
                            opd_code=opd, requested_time=to_timestamp(requested))
    req.sla.acknowledge_due.CopyFrom(to_timestamp(requested + 300))
    req.sla.resolve_due.CopyFrom(to_timestamp(requested + 86400))
    req.sla.acknowledge_breached = ack_breached
    if acked is not None:
        req.acknowledged_time.CopyFrom(to_timestamp(acked))
    if resolved is not None:
        req.resolved_time.CopyFrom(to_timestamp(resolved))
    return req


def test_percentiles_match_the_standard_library() -> None:
    rng = random.Random(7)
    for n in (1, 2, 3, 10, 101):
        values = sorted(rng.uniform(0, 1000) for _ in range(n))
        assert percentile(values, 0.5) == pytest.approx(statistics.median(values))
        if n >= 2:
            p90 = statistics.quantiles(values, n=10, method="inclusive")[8]
            assert percentile(values, 0.9) == pytest.approx(p90)
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0, 20.0], 0.9) == pytest.approx(19.0)
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_open_overdue_and_times_per_scope() -> None:
    book = StatsBook()
    book.update(request("a", 1))
    book.update(request("b", 3, pb.REQUEST_STATUS_SUBMITTED, ack_breached=True))
    book.update(request("c", 5, pb.REQUEST_STATUS_RESOLVED, acked=T0 + 60, resolved=T0 + 3600))
    book.update(request("d", 5, pb.REQUEST_STATUS_CLOSED, acked=T0 + 180, resolved=T0 + 7200))
    book.update(request("e", 2, pb.REQUEST_STATUS_ACKNOWLEDGED, acked=T0 + 120, ack_breached=True))
    for scope in (CATEGORY, OPD):
        stats = book.stats(scope, now=T0 + 10)
        assert (stats.total, stats.open, stats.overdue) == (5, 3, 1)  # e was late but is acknowledged
        assert (stats.submitted_today, stats.resolved_today, stats.sla_breaches_today) == (5, 2, 2)
        assert stats.median_time_to_acknowledge.ToTimedelta().total_seconds() == 120
        assert stats.p90_time_to_acknowledge.ToTimedelta().total_seconds() == pytest.approx(168)
        assert stats.median_time_to_resolve.ToTimedelta().total_seconds() == 5400
    assert book.open_by_pair[("roads", "PUPR")] == 3
    assert book.overdue_by_pair[("roads", "PUPR")] == 1
    assert stats_key(CATEGORY) == "category:roads" and stats_key(OPD) == "opd:PUPR"


def test_updates_are_idempotent_and_older_versions_are_ignored() -> None:
    book = StatsBook()
    assert book.update(request("a", 1)) == {CATEGORY, OPD}
    assert book.update(request("a", 1)) == set()
    book.update(request("a", 4, pb.REQUEST_STATUS_RESOLVED, acked=T0 + 10, resolved=T0 + 100))
    assert book.update(request("a", 2, pb.REQUEST_STATUS_ACKNOWLEDGED, acked=T0 + 10)) == set()
    stats = book.stats(CATEGORY, T0)
    assert (stats.total, stats.open, stats.resolved_today) == (1, 0, 1)
    assert stats.median_time_to_resolve.ToTimedelta().total_seconds() == 100


def test_a_reopened_request_leaves_the_resolution_figures() -> None:
    book = StatsBook()
    book.update(request("a", 5, pb.REQUEST_STATUS_RESOLVED, acked=T0 + 10, resolved=T0 + 100))
    book.update(request("a", 6, pb.REQUEST_STATUS_IN_PROGRESS, acked=T0 + 10))
    stats = book.stats(CATEGORY, T0)
    assert (stats.open, stats.resolved_today) == (1, 0)
    assert not stats.HasField("median_time_to_resolve")


def test_today_is_the_local_day_and_rolls_over_at_local_midnight() -> None:
    book = StatsBook(utc_offset_h=7.0)
    late_evening = T0 + 13.5 * 3600  # 23:30 WIB
    book.update(request("a", 1, requested=late_evening))
    assert book.stats(CATEGORY, late_evening).submitted_today == 1
    assert book.stats(CATEGORY, late_evening + 3600).submitted_today == 0  # 00:30 WIB next day
    assert day_of(T0 + 14 * 3600, 7.0) == day_of(T0, 7.0) + 1
    assert day_of(T0 + 14 * 3600 - 1, 7.0) == day_of(T0, 7.0)


def test_scopes_follow_the_request_to_its_opd() -> None:
    book = StatsBook()
    book.update(request("a", 1, category="fire", opd="DAMKAR"))
    book.update(request("b", 1, category="emergency", opd="BPBD"))
    assert book.scopes() == sorted([(pb.STATS_SCOPE_CATEGORY, "fire"), (pb.STATS_SCOPE_CATEGORY, "emergency"),
                                    (pb.STATS_SCOPE_OPD, "DAMKAR"), (pb.STATS_SCOPE_OPD, "BPBD")])
    assert book.stats((pb.STATS_SCOPE_OPD, "DAMKAR"), T0).open == 1


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(1, 6), st.integers(0, 7200)), max_size=60))
def test_incremental_totals_equal_a_fresh_count(updates: list[tuple[int, int, int]]) -> None:
    """Whatever order versions come in, the book equals one built from the latest versions only."""
    statuses = [pb.REQUEST_STATUS_SUBMITTED, pb.REQUEST_STATUS_ACKNOWLEDGED, pb.REQUEST_STATUS_ASSIGNED,
                pb.REQUEST_STATUS_IN_PROGRESS, pb.REQUEST_STATUS_RESOLVED, pb.REQUEST_STATUS_CLOSED]

    def version(rid: int, v: int, offset: int) -> pb.ServiceRequest:
        status = statuses[v - 1]
        acked = T0 + rid * 7 + offset if v >= 2 else None
        resolved = T0 + rid * 11 + offset + 60 if v >= 5 else None
        return request(f"r{rid}", v, status, acked=acked, resolved=resolved, ack_breached=offset > 3600)

    incremental = StatsBook()
    latest: dict[int, pb.ServiceRequest] = {}
    for rid, v, offset in updates:
        incremental.update(version(rid, v, offset))
        if rid not in latest or latest[rid].version < v:
            latest[rid] = version(rid, v, offset)
    fresh = StatsBook()
    fresh.update_all(latest.values())
    for scope in fresh.scopes():
        assert incremental.stats(scope, T0) == fresh.stats(scope, T0)
