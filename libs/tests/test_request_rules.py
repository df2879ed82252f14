"""The shared request rules: the lifecycle table, open and overdue, the text limits."""

from __future__ import annotations

import itertools

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from smartcity import request_rules as rules
from smartcity.v1 import requests_pb2 as pb

S = pb.RequestStatus
ALL_STATUSES = [s for s in S.values() if s != pb.REQUEST_STATUS_UNSPECIFIED]


def request(status: int = pb.REQUEST_STATUS_SUBMITTED, *, ack_due: float = 0.0, resolve_due: float = 0.0,
            ack_breached: bool = False, resolve_breached: bool = False) -> pb.ServiceRequest:
    def stamp(seconds: float) -> Timestamp:
        return Timestamp(seconds=int(seconds), nanos=round((seconds - int(seconds)) * 1e9))

    sla = pb.SlaStatus(acknowledge_breached=ack_breached, resolve_breached=resolve_breached)
    if ack_due:
        sla.acknowledge_due.CopyFrom(stamp(ack_due))
    if resolve_due:
        sla.resolve_due.CopyFrom(stamp(resolve_due))
    return pb.ServiceRequest(request_id="r-1", status=status, sla=sla)  # type: ignore[arg-type]


def test_the_happy_path_walks_the_lifecycle_to_closed() -> None:
    status = pb.REQUEST_STATUS_SUBMITTED
    for action in ("acknowledge", "assign", "start", "resolve", "close"):
        assert rules.allows(action, status)
        to = rules.TRANSITIONS[action].to
        assert to is not None
        status = to
    assert status == pb.REQUEST_STATUS_CLOSED


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        ("acknowledge", {"SUBMITTED"}),
        ("assign", {"ACKNOWLEDGED"}),
        ("start", {"ASSIGNED"}),
        ("resolve", {"IN_PROGRESS"}),
        ("close", {"RESOLVED"}),
        ("reject", {"SUBMITTED", "ACKNOWLEDGED"}),
        ("reopen", {"RESOLVED"}),
        ("comment", {"SUBMITTED", "ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS", "RESOLVED"}),
    ],
)
def test_each_action_is_allowed_from_exactly_its_statuses(action: str, allowed: set[str]) -> None:
    names = {S.Name(s).removeprefix("REQUEST_STATUS_") for s in ALL_STATUSES if rules.allows(action, s)}
    assert names == allowed


def test_reject_and_reopen_lead_where_the_lifecycle_says() -> None:
    assert rules.TRANSITIONS["reject"].to == pb.REQUEST_STATUS_REJECTED
    assert rules.TRANSITIONS["reopen"].to == pb.REQUEST_STATUS_IN_PROGRESS
    assert rules.TRANSITIONS["comment"].to is None  # a comment keeps the status
    assert rules.TRANSITIONS["reopen"].event_type == pb.REQUEST_EVENT_TYPE_REOPENED


def test_final_statuses_allow_nothing_and_unknown_actions_are_never_allowed() -> None:
    for action, status in itertools.product(rules.TRANSITIONS, rules.FINAL_STATUSES):
        assert not rules.allows(action, status)
    assert not rules.allows("submit", pb.REQUEST_STATUS_SUBMITTED)  # submit creates, it moves nothing
    assert not rules.allows("teleport", pb.REQUEST_STATUS_SUBMITTED)
    assert rules.ACTIONS[0] == "submit" and set(rules.ACTIONS[1:]) == set(rules.TRANSITIONS)


def test_open_means_not_yet_resolved() -> None:
    assert {s for s in ALL_STATUSES if rules.is_open(request(s))} == {
        pb.REQUEST_STATUS_SUBMITTED, pb.REQUEST_STATUS_ACKNOWLEDGED,
        pb.REQUEST_STATUS_ASSIGNED, pb.REQUEST_STATUS_IN_PROGRESS,
    }
    assert not rules.is_open(request(pb.REQUEST_STATUS_UNSPECIFIED))


def test_overdue_from_flags_needs_a_flagged_sla_that_still_runs() -> None:
    assert rules.is_overdue(request(ack_breached=True))
    assert not rules.is_overdue(request(ack_due=10))  # past due but not flagged, and no clock given
    # Acknowledged late: late in its history, no longer overdue.
    assert not rules.is_overdue(request(pb.REQUEST_STATUS_ACKNOWLEDGED, ack_breached=True))
    assert rules.is_overdue(request(pb.REQUEST_STATUS_IN_PROGRESS, ack_breached=True, resolve_breached=True))
    assert not rules.is_overdue(request(pb.REQUEST_STATUS_RESOLVED, resolve_breached=True))
    assert not rules.is_overdue(request(pb.REQUEST_STATUS_CLOSED, ack_breached=True, resolve_breached=True))


def test_overdue_with_a_clock_also_counts_due_times_already_passed() -> None:
    now = 1000.0
    assert rules.is_overdue(request(ack_due=999), now)
    assert not rules.is_overdue(request(ack_due=1000), now)  # exactly at the due time is in time
    assert not rules.is_overdue(request(ack_due=1001), now)
    assert not rules.is_overdue(request(pb.REQUEST_STATUS_ACKNOWLEDGED, ack_due=999), now)
    assert rules.is_overdue(request(pb.REQUEST_STATUS_ASSIGNED, ack_due=999, resolve_due=999.5), now)
    assert not rules.is_overdue(request(), now)  # no due time set: never late
    assert not rules.is_overdue(request(pb.REQUEST_STATUS_REJECTED, ack_due=1, resolve_due=2), now)


def test_sla_helpers_read_the_right_kind() -> None:
    r = request(ack_due=100.25, resolve_due=200.5, resolve_breached=True)
    assert rules.sla_due(r, pb.SLA_KIND_ACKNOWLEDGE) == 100.25
    assert rules.sla_due(r, pb.SLA_KIND_RESOLVE) == 200.5
    assert not rules.sla_breached(r, pb.SLA_KIND_ACKNOWLEDGE) and rules.sla_breached(r, pb.SLA_KIND_RESOLVE)
    acked = request(pb.REQUEST_STATUS_ACKNOWLEDGED)
    assert not rules.sla_running(acked, pb.SLA_KIND_ACKNOWLEDGE)
    assert rules.sla_running(acked, pb.SLA_KIND_RESOLVE)


def test_the_title_is_optional_and_the_description_required() -> None:
    assert not rules.TITLE_REQUIRED and rules.DESCRIPTION_REQUIRED
    assert (rules.MAX_TITLE, rules.MAX_DESCRIPTION, rules.MAX_NOTE) == (200, 4000, 2000)
    assert (rules.MAX_ADDRESS, rules.MAX_MEDIA_URL) == (500, 2048)
    assert sorted(rules.REASON_REQUIRED) == ["reject", "reopen"]
    assert all(action in rules.TRANSITIONS for action in rules.REASON_REQUIRED)


# ---- which characters user text may hold


@pytest.mark.parametrize(
    "value", ["Jalan rusak.\nMohon segera.", "a\tb", "baris 1\r\nbaris 2\r\n", "kata\u200ekata", "مسجد"]
)
def test_multiline_text_accepts_paragraphs(value: str) -> None:
    assert rules.text_problem(value, multiline=True) is None


@pytest.mark.parametrize(
    "value, says",
    [
        ("nul\x00byte", "U+0000"),
        ("bell\x07", "U+0007"),
        ("lone\rreturn", "U+000D"),
        ("esc\x1b[31m", "U+001B"),
        ("del\x7f", "U+007F"),
        ("c1\x85", "U+0085"),
        ("c1\x9b", "U+009B"),
        ("evil\u202etxt.exe", "U+202E"),
        ("embed\u202a", "U+202A"),
        ("isolate\u2066x\u2069", "U+2066"),
        ("non\ufffe", "U+FFFE"),
        ("non\uffff", "U+FFFF"),
        ("non\U0010ffff", "U+10FFFF"),
        ("non\U0001fffe", "U+1FFFE"),
        ("non\ufdd0", "U+FDD0"),
        ("non\ufdef", "U+FDEF"),
    ],
)
def test_other_controls_bidi_overrides_and_noncharacters_are_refused(value: str, says: str) -> None:
    problem = rules.text_problem(value, multiline=True)
    assert problem is not None and says in problem


@pytest.mark.parametrize("value", ["a\nb", "a\tb", "a\r\nb"])
def test_single_line_text_refuses_line_breaks_and_tabs(value: str) -> None:
    assert rules.text_problem(value, multiline=False) is not None
    assert rules.text_problem(value.replace("\r", "").replace("\n", " ").replace("\t", " ")) is None


def test_characters_next_to_the_refused_ranges_are_accepted() -> None:
    for char in ("\xa0", "\u2065", "\u206a", "\ufdcf", "\ufdf0", "\ufffd", "\U0001fffd"):
        assert rules.text_problem(f"x{char}y") is None, repr(char)
