"""The statistics' rolling window: finished requests leave it, open ones never (no Kafka)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citizen_requests.config import ServiceSettings
from citizen_requests.core.stats import StatsBook
from smartcity.codec import to_timestamp
from smartcity.settings import SettingsError
from smartcity.v1 import requests_pb2 as pb

# 2026-01-01 10:00 WIB = 03:00 UTC
T0 = 1_767_236_400.0
DAY = 86400.0
WINDOW = 90 * DAY
CATEGORY = (pb.STATS_SCOPE_CATEGORY, "roads")
OPD = (pb.STATS_SCOPE_OPD, "PUPR")
FINISHED = [pb.REQUEST_STATUS_RESOLVED, pb.REQUEST_STATUS_CLOSED, pb.REQUEST_STATUS_REJECTED]
OPEN = [pb.REQUEST_STATUS_SUBMITTED, pb.REQUEST_STATUS_ACKNOWLEDGED, pb.REQUEST_STATUS_ASSIGNED,
        pb.REQUEST_STATUS_IN_PROGRESS]


def request(rid: str, version: int, status: int, *, requested: float = T0, changed: float | None = None,
            acked: float | None = None, resolved: float | None = None, ack_breached: bool = False,
            category: str = "roads", opd: str = "PUPR") -> pb.ServiceRequest:
    """A request version; `changed` is its updated_time (default: its latest milestone)."""
    req = pb.ServiceRequest(request_id=rid, version=version, status=status, category=category,  # type: ignore[arg-type]
                            opd_code=opd, requested_time=to_timestamp(requested))
    req.sla.acknowledge_due.CopyFrom(to_timestamp(requested + 300))
    req.sla.resolve_due.CopyFrom(to_timestamp(requested + DAY))
    req.sla.acknowledge_breached = ack_breached
    if acked is not None:
        req.acknowledged_time.CopyFrom(to_timestamp(acked))
    if resolved is not None:
        req.resolved_time.CopyFrom(to_timestamp(resolved))
    last = max(t for t in (requested, acked, resolved) if t is not None)
    req.updated_time.CopyFrom(to_timestamp(changed if changed is not None else last))
    return req


def finished(rid: str, status: int, at: float, version: int = 5, **kw: object) -> pb.ServiceRequest:
    """A request finished (with `status`) at `at`, submitted an hour before."""
    resolved = at if status != pb.REQUEST_STATUS_REJECTED else None
    acked = at - 1800 if status != pb.REQUEST_STATUS_REJECTED else None
    return request(rid, version, status, requested=at - 3600, acked=acked, resolved=resolved, changed=at,
                   **kw)  # type: ignore[arg-type]


def figures(book: StatsBook, now: float) -> dict[tuple[pb.StatsScope, str], pb.RequestStats]:
    return {scope: book.stats(scope, now) for scope in book.scopes()}


def same_figures(book: StatsBook, fresh: StatsBook, now: float) -> None:
    """Equal figures on every scope either book knows (a scope emptied by eviction reads zero)."""
    for scope in set(book.scopes()) | set(fresh.scopes()):
        assert book.stats(scope, now) == fresh.stats(scope, now), scope


# ---- eviction

@pytest.mark.parametrize("status", FINISHED, ids=[pb.RequestStatus.Name(s) for s in FINISHED])
def test_a_finished_request_leaves_once_its_last_change_is_older_than_the_window(status: int) -> None:
    book = StatsBook(window_days=90)
    book.update(finished("a", status, T0))
    book.update(request("b", 1, pb.REQUEST_STATUS_SUBMITTED, requested=T0))
    assert book.evict(T0 + WINDOW).request_ids == []  # exactly 90 days old: still inside
    assert len(book) == 2 and book.stats(CATEGORY, T0 + WINDOW).total == 2
    eviction = book.evict(T0 + WINDOW + 1)
    assert eviction.request_ids == ["a"]
    assert eviction.scopes == {CATEGORY, OPD}
    assert "a" not in book and len(book) == 1
    for scope in (CATEGORY, OPD):
        stats = book.stats(scope, T0 + WINDOW + 1)
        assert (stats.total, stats.open) == (1, 1)
        assert not stats.HasField("median_time_to_resolve")
        assert not stats.HasField("median_time_to_acknowledge")
    assert book.evict(T0 + WINDOW + 1).request_ids == []  # a second pass finds nothing more


def test_a_request_finished_today_stays_and_counts_today() -> None:
    book = StatsBook(window_days=0.5)  # even a window shorter than a day
    book.update(finished("a", pb.REQUEST_STATUS_RESOLVED, T0))
    assert book.evict(T0 + 3600).request_ids == []
    assert book.stats(CATEGORY, T0 + 3600).resolved_today == 1


@pytest.mark.parametrize("status", OPEN, ids=[pb.RequestStatus.Name(s) for s in OPEN])
def test_open_and_overdue_requests_never_leave(status: int) -> None:
    book = StatsBook(window_days=90)
    acked = T0 + 600 if status != pb.REQUEST_STATUS_SUBMITTED else None
    book.update(request("open", 2, status, acked=acked))
    book.update(request("late", 2, status, acked=acked, ack_breached=True, requested=T0 - DAY))
    book.update(request("overdue", 2, pb.REQUEST_STATUS_SUBMITTED, ack_breached=True))
    years_later = T0 + 10 * 365 * DAY
    assert book.evict(years_later).request_ids == []
    stats = book.stats(OPD, years_later)
    overdue = 1 + (status == pb.REQUEST_STATUS_SUBMITTED)  # "late" is overdue while unacknowledged
    assert (stats.total, stats.open, stats.overdue) == (3, 3, overdue)
    assert book.open_by_pair[("roads", "PUPR")] == 3
    assert book.overdue_by_pair[("roads", "PUPR")] == overdue


def test_figures_after_eviction_equal_a_fresh_book_of_the_window() -> None:
    rng = random.Random(11)
    versions: list[pb.ServiceRequest] = []
    categories = [("roads", "PUPR"), ("waste", "DLH"), ("permits", "DPMPTSP")]
    for i in range(400):
        category, opd = categories[i % 3]
        at = T0 + rng.uniform(0, 365 * DAY)
        if rng.random() < 0.25:
            versions.append(request(f"r{i}", 1, rng.choice(OPEN), requested=at, category=category, opd=opd,
                                    ack_breached=rng.random() < 0.3))
        else:
            versions.append(finished(f"r{i}", rng.choice(FINISHED), at, category=category, opd=opd))
    now = T0 + 365 * DAY
    book = StatsBook(window_days=90)
    book.update_all(versions)
    eviction = book.evict(now)
    inside = [v for v in versions if v.status in OPEN or v.updated_time.seconds >= now - WINDOW]
    assert 100 < len(inside) < 250 and len(eviction.request_ids) == len(versions) - len(inside)
    fresh = StatsBook(window_days=90)
    fresh.update_all(inside)
    same_figures(book, fresh, now)
    assert book.open_by_pair == fresh.open_by_pair and book.overdue_by_pair == fresh.overdue_by_pair
    # Evicted ids come out oldest first.
    times = {v.request_id: v.updated_time.seconds for v in versions}
    assert [times[r] for r in eviction.request_ids] == sorted(times[r] for r in eviction.request_ids)


def test_a_pass_can_be_bounded_and_the_next_one_goes_on() -> None:
    book = StatsBook(window_days=1)
    book.update_all(finished(f"r{i}", pb.REQUEST_STATUS_CLOSED, T0 + i) for i in range(10))
    first = book.evict(T0 + 30 * DAY, limit=4)
    assert first.request_ids == ["r0", "r1", "r2", "r3"] and len(book) == 6
    assert book.evict(T0 + 30 * DAY).request_ids == [f"r{i}" for i in range(4, 10)]
    assert len(book) == 0 and book.stats(CATEGORY, T0).total == 0


# ---- redelivery and re-entry

def test_redelivered_old_versions_of_an_evicted_request_change_nothing() -> None:
    book = StatsBook(window_days=90)
    history = [request("a", 1, pb.REQUEST_STATUS_SUBMITTED, requested=T0),
               request("a", 2, pb.REQUEST_STATUS_ACKNOWLEDGED, requested=T0, acked=T0 + 60),
               request("a", 4, pb.REQUEST_STATUS_RESOLVED, requested=T0, acked=T0 + 60, resolved=T0 + 3600),
               request("a", 5, pb.REQUEST_STATUS_CLOSED, requested=T0, acked=T0 + 60, resolved=T0 + 3600,
                       changed=T0 + 7200)]
    book.update_all(history)
    book.update(request("b", 1, pb.REQUEST_STATUS_SUBMITTED, requested=T0 + 200 * DAY))
    now = T0 + 200 * DAY
    assert book.evict(now).request_ids == ["a"]
    before = figures(book, now)
    for version in [*history, *reversed(history)]:  # open ones too: they must not come back as open
        assert book.expired(version)
        assert book.update(version) == set()
    assert "a" not in book and figures(book, now) == before
    assert book.stats(OPD, now).open == 1


def test_an_open_request_unknown_to_the_book_counts_however_old() -> None:
    """A re-read or late request: open, every change older than the window, never evicted here."""
    book = StatsBook(window_days=90)
    book.update(finished("a", pb.REQUEST_STATUS_CLOSED, T0))
    now = T0 + 200 * DAY
    assert book.evict(now).request_ids == ["a"]
    assert book.update(request("b", 1, pb.REQUEST_STATUS_SUBMITTED, requested=T0, ack_breached=True))
    stats = book.stats(OPD, now)
    assert (stats.total, stats.open, stats.overdue) == (1, 1, 1)
    # Its finished successor (just as old) follows it, and it leaves at the next pass.
    assert book.update(request("b", 2, pb.REQUEST_STATUS_REJECTED, requested=T0, changed=T0 + 60))
    assert book.evict(now).request_ids == ["b"]
    assert book.stats(OPD, now).total == 0


def test_evicted_requests_are_remembered_for_one_window() -> None:
    book = StatsBook(window_days=90)
    book.update_all(finished(f"r{i}", pb.REQUEST_STATUS_RESOLVED, T0 + i * DAY) for i in range(3))
    now = T0 + 100 * DAY
    assert book.evict(now).request_ids == ["r0", "r1", "r2"]
    assert book.remembered_evictions == 3
    book.evict(now + WINDOW)
    assert book.remembered_evictions == 3
    book.evict(now + WINDOW + 1)
    assert book.remembered_evictions == 0


def test_a_request_reopened_after_the_window_comes_back() -> None:
    book = StatsBook(window_days=90)
    resolved = request("a", 4, pb.REQUEST_STATUS_RESOLVED, acked=T0 + 60, resolved=T0 + 3600)
    book.update(resolved)
    later = T0 + 120 * DAY
    assert book.evict(later).request_ids == ["a"]
    assert book.update(resolved) == set()
    reopened = request("a", 5, pb.REQUEST_STATUS_IN_PROGRESS, acked=T0 + 60, changed=later)
    assert not book.expired(reopened)
    assert book.update(reopened) == {CATEGORY, OPD}
    stats = book.stats(CATEGORY, later)
    assert (stats.total, stats.open) == (1, 1)
    assert stats.median_time_to_acknowledge.ToTimedelta().total_seconds() == 60
    assert book.evict(later + 365 * DAY).request_ids == []  # open again: it stays
    # Resolved again, it leaves one window after that change.
    book.update(request("a", 6, pb.REQUEST_STATUS_RESOLVED, acked=T0 + 60, resolved=later + DAY))
    assert book.evict(later + DAY + WINDOW).request_ids == []
    assert book.evict(later + DAY + WINDOW + 1).request_ids == ["a"]


def test_a_held_request_whose_new_version_is_already_old_leaves_at_the_next_pass() -> None:
    book = StatsBook(window_days=90)
    book.update(request("a", 1, pb.REQUEST_STATUS_SUBMITTED, requested=T0))
    now = T0 + 100 * DAY
    book.evict(now)
    # Open when the window passed it, so held; this late version finishes it back in time.
    assert book.update(request("a", 2, pb.REQUEST_STATUS_REJECTED, requested=T0, changed=T0 + 60))
    assert book.stats(CATEGORY, now).total == 1
    assert book.evict(now).request_ids == ["a"]
    assert book.stats(CATEGORY, now).total == 0


def test_a_version_superseded_in_the_heap_does_not_evict_its_successor() -> None:
    book = StatsBook(window_days=90)
    book.update(request("a", 4, pb.REQUEST_STATUS_RESOLVED, acked=T0 + 60, resolved=T0 + 3600))
    book.update(request("a", 5, pb.REQUEST_STATUS_IN_PROGRESS, acked=T0 + 60, changed=T0 + 10 * DAY))
    assert book.evict(T0 + 95 * DAY).request_ids == []  # the resolved version's entry is stale
    assert book.stats(CATEGORY, T0 + 95 * DAY).open == 1


# A timeline: a request's next command, a redelivery of one of its versions, days passing, or
# an eviction pass.
_OPS = st.lists(st.one_of(
    st.tuples(st.just("step"), st.integers(0, 7), st.just(0)),
    st.tuples(st.just("redeliver"), st.integers(0, 7), st.integers(0, 5)),
    st.tuples(st.just("advance"), st.integers(1, 60), st.just(0)),
    st.tuples(st.just("evict"), st.just(0), st.just(0)),
), max_size=80)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_any_timeline_ends_with_the_figures_of_a_fresh_book_of_the_window(
        ops: list[tuple[str, int, int]]) -> None:
    """Commands advance requests (their versions changing at the current time), a request's
    versions are replayed from any point at any moment, eviction passes come whenever: after a
    final pass the book equals a fresh one fed the latest version of each request still in the
    window."""
    lifecycle = [pb.REQUEST_STATUS_SUBMITTED, pb.REQUEST_STATUS_ACKNOWLEDGED, pb.REQUEST_STATUS_RESOLVED,
                 pb.REQUEST_STATUS_IN_PROGRESS, pb.REQUEST_STATUS_RESOLVED, pb.REQUEST_STATUS_CLOSED]
    book = StatsBook(window_days=30)
    now = T0
    sent: dict[int, list[pb.ServiceRequest]] = {}
    for op, arg, which in ops:
        if op == "advance":
            now += arg * DAY
        elif op == "evict":
            book.evict(now)
        elif op == "step":
            versions = sent.setdefault(arg, [])
            if len(versions) == len(lifecycle):
                continue
            status = lifecycle[len(versions)]
            first = versions[0] if versions else None
            requested = first.requested_time.seconds if first else now
            acked = requested + 1 + arg if len(versions) >= 1 else None
            resolved = now if status in FINISHED else None
            versions.append(request(f"r{arg}", len(versions) + 1, status, requested=requested, acked=acked,
                                    resolved=resolved, changed=now, ack_breached=arg % 3 == 0))
            book.update(versions[-1])
        elif sent.get(arg):
            # A rewind replays a request's versions from some point on, in order (one partition).
            book.update_all(sent[arg][which % len(sent[arg]):])
    book.evict(now)
    latest = [versions[-1] for versions in sent.values()]
    inside = [v for v in latest if v.status in OPEN or v.updated_time.seconds >= now - 30 * DAY]
    fresh = StatsBook(window_days=30)
    fresh.update_all(inside)
    assert sorted(v.request_id for v in inside) == sorted(r for r in (f"r{i}" for i in sent) if r in book)
    same_figures(book, fresh, now)


# ---- configuration

def test_the_window_setting_defaults_to_90_days_and_must_be_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings.from_env().stats_window_days == 90
    monkeypatch.setenv("REQUESTS_STATS_WINDOW_DAYS", "30.5")
    assert ServiceSettings.from_env().stats_window_days == 30.5
    for bad in ("0", "-1", "nan"):
        monkeypatch.setenv("REQUESTS_STATS_WINDOW_DAYS", bad)
        with pytest.raises(SettingsError, match="REQUESTS_STATS_WINDOW_DAYS"):
            ServiceSettings.from_env()
    with pytest.raises(ValueError):
        StatsBook(window_days=0)
