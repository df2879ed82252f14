"""The request lifecycle, routing, SLAs and validation, straight against the domain (no Kafka)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from citizen_requests.config import load_config
from citizen_requests.core.lifecycle import flag_overdue, handle_command, validate_envelope
from citizen_requests.core.routing import RequestsConfig
from citizen_requests.core.sla import next_due, overdue_kinds
from citizen_requests.sim.command_builders import STAFF, action_command, actor, submit_command
from smartcity.codec import from_timestamp, to_timestamp
from smartcity.request_rules import is_overdue
from smartcity.v1 import requests_pb2 as pb

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
STAFF_ACTOR = actor(STAFF, "budi", "PUPR")

STATUS = {name: getattr(pb, f"REQUEST_STATUS_{name}") for name in
          ("SUBMITTED", "ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS", "RESOLVED", "CLOSED", "REJECTED")}

# The lifecycle of ARCHITECTURE.md, written out independently of the code's transition table.
ALLOWED: dict[tuple[str, str], str] = {
    ("SUBMITTED", "acknowledge"): "ACKNOWLEDGED",
    ("ACKNOWLEDGED", "assign"): "ASSIGNED",
    ("ASSIGNED", "start"): "IN_PROGRESS",
    ("IN_PROGRESS", "resolve"): "RESOLVED",
    ("RESOLVED", "close"): "CLOSED",
    ("SUBMITTED", "reject"): "REJECTED",
    ("ACKNOWLEDGED", "reject"): "REJECTED",
    ("RESOLVED", "reopen"): "IN_PROGRESS",
    **{(status, "comment"): status for status in
       ("SUBMITTED", "ACKNOWLEDGED", "ASSIGNED", "IN_PROGRESS", "RESOLVED")},
}
PAYLOADS: dict[str, dict[str, str]] = {
    "acknowledge": {"note": "diterima"}, "assign": {"assignee": "tim-1"}, "start": {},
    "resolve": {"note": "selesai"}, "close": {}, "reject": {"reason": "bukan wewenang"},
    "reopen": {"reason": "masih rusak"}, "comment": {"text": "sedang dicek"},
}


@pytest.fixture(scope="module")
def config() -> RequestsConfig:
    return load_config()


def new_submit(category: str = "roads", at: float = T0, key: str = "k1", **kw: object) -> pb.RequestCommand:
    fields: dict[str, object] = {"latitude": -7.3883, "longitude": 109.3639,
                                 "description": "Jalan berlubang"} | kw
    return submit_command(client_id="sim-citizens", idempotency_key=key, category=category,
                          issued_at=at, **fields)  # type: ignore[arg-type]


def command(request: pb.ServiceRequest, action: str, at: float, **kw: Any) -> pb.RequestCommand:
    fields = PAYLOADS[action] | kw
    return action_command(request.request_id, action, issued_at=at, by=STAFF_ACTOR, client_id="sim-pupr",
                          **fields)


def submitted(config: RequestsConfig, **kw: object) -> pb.ServiceRequest:
    outcome = handle_command(None, new_submit(**kw), config)  # type: ignore[arg-type]
    assert outcome.request is not None
    return outcome.request


def at_status(config: RequestsConfig, status: str) -> pb.ServiceRequest:
    """A roads request driven to `status` through the real lifecycle, one minute per step."""
    paths = {
        "SUBMITTED": [], "ACKNOWLEDGED": ["acknowledge"], "ASSIGNED": ["acknowledge", "assign"],
        "IN_PROGRESS": ["acknowledge", "assign", "start"],
        "RESOLVED": ["acknowledge", "assign", "start", "resolve"],
        "CLOSED": ["acknowledge", "assign", "start", "resolve", "close"], "REJECTED": ["reject"],
    }
    request = submitted(config)
    for step, action in enumerate(paths[status], start=1):
        outcome = handle_command(request, command(request, action, T0 + 60 * step), config)
        assert outcome.changed, outcome.events[0].rejection_reason
        assert outcome.request is not None
        request = outcome.request
    assert request.status == STATUS[status]
    return request


@pytest.mark.parametrize(("status", "action"), list(itertools.product(STATUS, PAYLOADS)))
def test_every_transition_is_allowed_or_rejected_as_the_lifecycle_says(config: RequestsConfig, status: str,
                                                                       action: str) -> None:
    request = at_status(config, status)
    cmd = command(request, action, T0 + 3600)
    outcome = handle_command(request, cmd, config)
    expected = ALLOWED.get((status, action))
    if expected is None:
        assert not outcome.changed
        assert outcome.request == request  # nothing changed, not even the version
        [event] = outcome.events
        assert event.type == pb.REQUEST_EVENT_TYPE_COMMAND_REJECTED
        assert event.rejection_code == pb.REJECTION_CODE_INVALID_TRANSITION
        assert status in event.rejection_reason and action in event.rejection_reason
        assert (event.correlation_id, event.command_id) == (cmd.correlation_id, cmd.command_id)
        assert event.version == request.version
    else:
        assert outcome.changed and outcome.request is not None
        [event] = outcome.events
        assert outcome.request.status == STATUS[expected]
        assert outcome.request.version == request.version + 1 == event.version
        assert (event.status_before, event.status_after) == (STATUS[status], STATUS[expected])
        assert outcome.request.history[-1].version == event.version
        assert outcome.request.history[-1].actor == STAFF_ACTOR
        assert (event.correlation_id, event.command_id) == (cmd.correlation_id, cmd.command_id)


def test_the_lifecycle_records_times_assignee_and_comments(config: RequestsConfig) -> None:
    request = at_status(config, "ASSIGNED")
    assert request.assignee == "tim-1"
    assert from_timestamp(request.acknowledged_time) == T0 + 60
    commented = handle_command(request, command(request, "comment", T0 + 500), config).request
    assert commented is not None and commented.comment_count == 1
    assert commented.history[-1].note == "sedang dicek"
    assert from_timestamp(commented.updated_time) == T0 + 500
    resolved = at_status(config, "RESOLVED")
    assert from_timestamp(resolved.resolved_time) == T0 + 240
    reopened = handle_command(resolved, command(resolved, "reopen", T0 + 900), config).request
    assert reopened is not None and not reopened.HasField("resolved_time")
    assert [h.type for h in reopened.history][-1] == pb.REQUEST_EVENT_TYPE_REOPENED
    assert [h.version for h in reopened.history] == list(range(1, reopened.version + 1))


def test_unknown_request_is_not_found_and_version_conflicts_are_rejected(config: RequestsConfig) -> None:
    request = submitted(config)
    lost = handle_command(None, command(request, "acknowledge", T0), config)
    assert lost.events[0].rejection_code == pb.REJECTION_CODE_NOT_FOUND
    assert lost.request is None and not lost.events[0].HasField("request")
    stale = handle_command(request, command(request, "acknowledge", T0, expected_version=7), config)
    assert stale.events[0].rejection_code == pb.REJECTION_CODE_VERSION_CONFLICT
    assert stale.request == request
    fresh = handle_command(request, command(request, "acknowledge", T0, expected_version=1), config)
    assert fresh.changed


@pytest.mark.parametrize(("change", "problem"), [
    ({"category": "unicorns"}, "unknown category"),
    ({"description": "   "}, "description is empty"),
    ({"latitude": None, "longitude": None}, "location or an address"),
    ({"latitude": 123.0}, "WGS 84"),
    ({"key": ""}, "idempotency_key"),
    ({"media_url": "file:///etc/passwd"}, "media_url"),
])
def test_an_incomplete_submit_is_rejected_as_invalid(config: RequestsConfig, change: dict[str, object],
                                                     problem: str) -> None:
    fields: dict[str, Any] = dict(change)
    key = str(fields.pop("key", "k1"))
    cmd = new_submit(**fields) if key else _keyless_submit(**fields)
    outcome = handle_command(None, cmd, config)
    assert not outcome.changed and outcome.request is None
    assert outcome.events[0].rejection_code == pb.REJECTION_CODE_INVALID_COMMAND
    assert problem in outcome.events[0].rejection_reason


def _keyless_submit(**kw: object) -> pb.RequestCommand:
    cmd = new_submit(**kw)  # type: ignore[arg-type]
    cmd.submit.idempotency_key = ""
    return cmd


def test_address_without_coordinates_is_enough(config: RequestsConfig) -> None:
    request = submitted(config, latitude=None, longitude=None, address="Jl. Jend. Sudirman 1")
    assert not request.HasField("location") and request.address == "Jl. Jend. Sudirman 1"


@pytest.mark.parametrize(("action", "fields", "problem"), [
    ("assign", {"assignee": " "}, "assignee"),
    ("comment", {"text": ""}, "text"),
    ("reject", {"reason": ""}, "reason"),
])
def test_actions_missing_their_payload_are_rejected(config: RequestsConfig, action: str,
                                                    fields: dict[str, str], problem: str) -> None:
    request = at_status(config, "ACKNOWLEDGED")
    outcome = handle_command(request, command(request, action, T0 + 600, **fields), config)
    assert outcome.events[0].rejection_code == pb.REJECTION_CODE_INVALID_COMMAND
    assert problem in outcome.events[0].rejection_reason
    assert outcome.request == request


def test_envelope_validation_names_the_missing_fields() -> None:
    with pytest.raises(ValueError, match=r"command_id.*issued_time.*action"):
        validate_envelope(pb.RequestCommand(request_id="req-1"))
    validate_envelope(new_submit())  # complete: no error


@pytest.mark.parametrize(("category", "opd"), [
    ("permits", "DPMPTSP"), ("health_info", "DINKES"), ("emergency", "BPBD"), ("fire", "DAMKAR"),
    ("roads", "PUPR"), ("waste", "DLH"), ("street_lights", "DISHUB"), ("wifi_cctv", "DINKOMINFO"),
    ("other", "COMMAND_CENTER"),
])
def test_each_category_is_routed_to_its_opd(config: RequestsConfig, category: str, opd: str) -> None:
    outcome = handle_command(None, new_submit(category=category), config)
    assert outcome.request is not None
    assert (outcome.request.opd_code, outcome.request.service_code) == (opd, category)
    assert outcome.events[0].note == f"routed to {opd}"


def test_submit_takes_priority_and_sla_from_the_category(config: RequestsConfig) -> None:
    emergency = submitted(config, category="emergency")
    assert emergency.priority == pb.PRIORITY_EMERGENCY
    assert from_timestamp(emergency.sla.acknowledge_due) == T0 + 300
    assert from_timestamp(emergency.sla.resolve_due) == T0 + 4 * 3600
    permit = submitted(config, category="permits", priority=pb.PRIORITY_HIGH)
    assert from_timestamp(permit.sla.acknowledge_due) == T0 + 4 * 3600
    assert from_timestamp(permit.sla.resolve_due) == T0 + 5 * 86400
    # An emergency-priority road report gets the 5 minutes every emergency gets.
    road = submitted(config, category="roads", priority=pb.PRIORITY_EMERGENCY)
    assert from_timestamp(road.sla.acknowledge_due) == T0 + 300


def test_due_times_count_from_the_requested_time_not_the_arrival(config: RequestsConfig) -> None:
    request = submitted(config, category="waste", at=T0 + 7200, requested_at=T0)
    assert from_timestamp(request.requested_time) == T0
    assert from_timestamp(request.sla.acknowledge_due) == T0 + 8 * 3600


# ---- SLAs

def test_acknowledging_exactly_at_the_due_time_is_in_time(config: RequestsConfig) -> None:
    request = submitted(config, category="emergency")
    due = from_timestamp(request.sla.acknowledge_due)
    outcome = handle_command(request, command(request, "acknowledge", due), config)
    assert [e.type for e in outcome.events] == [pb.REQUEST_EVENT_TYPE_ACKNOWLEDGED]
    assert outcome.request is not None and not outcome.request.sla.acknowledge_breached
    assert flag_overdue(request, due).events == []  # the timer agrees: at the due time is in time


def test_acknowledging_after_the_due_time_flags_the_breach_first(config: RequestsConfig) -> None:
    request = submitted(config, category="emergency")
    due = from_timestamp(request.sla.acknowledge_due)
    cmd = command(request, "acknowledge", due + 0.5)
    outcome = handle_command(request, cmd, config)
    breach, ack = outcome.events
    assert breach.type == pb.REQUEST_EVENT_TYPE_SLA_BREACHED
    assert breach.sla_breach.kind == pb.SLA_KIND_ACKNOWLEDGE
    assert from_timestamp(breach.event_time) == from_timestamp(breach.sla_breach.due_time) == due
    assert (breach.version, ack.version) == (2, 3)
    assert breach.correlation_id == cmd.correlation_id
    assert outcome.request is not None and outcome.request.sla.acknowledge_breached
    assert not is_overdue(outcome.request)  # acknowledged now: late, but no longer overdue


def test_a_late_event_counts_by_its_event_time(config: RequestsConfig) -> None:
    """An acknowledgement made in time but arriving after the due time is not a breach."""
    request = submitted(config, category="emergency")
    due = from_timestamp(request.sla.acknowledge_due)
    # Arrives (is processed) "now", long after the due time, but happened a minute before it.
    outcome = handle_command(request, command(request, "acknowledge", due - 60), config)
    assert outcome.request is not None and not outcome.request.sla.acknowledge_breached
    assert [e.type for e in outcome.events] == [pb.REQUEST_EVENT_TYPE_ACKNOWLEDGED]


def test_the_timer_flags_each_sla_once_and_only_while_it_runs(config: RequestsConfig) -> None:
    request = submitted(config, category="emergency")
    ack_due = from_timestamp(request.sla.acknowledge_due)
    resolve_due = from_timestamp(request.sla.resolve_due)
    assert next_due(request) == ack_due
    assert flag_overdue(request, ack_due).events == []
    first = flag_overdue(request, ack_due + 1)
    assert [e.sla_breach.kind for e in first.events] == [pb.SLA_KIND_ACKNOWLEDGE]
    assert first.request is not None and is_overdue(first.request)
    assert flag_overdue(first.request, ack_due + 100).events == []  # once per kind
    assert next_due(first.request) == resolve_due
    both = flag_overdue(request, resolve_due + 1)
    assert [e.sla_breach.kind for e in both.events] == [pb.SLA_KIND_ACKNOWLEDGE, pb.SLA_KIND_RESOLVE]
    assert [e.version for e in both.events] == [2, 3]
    rejected = at_status(config, "REJECTED")
    assert overdue_kinds(rejected, T0 + 10**8) == []  # a rejected request has no SLA running


def test_a_reopen_restarts_the_resolve_sla_from_the_reopen(config: RequestsConfig) -> None:
    resolved = at_status(config, "RESOLVED")
    resolve_due = from_timestamp(resolved.sla.resolve_due)
    window = config.sla_for(resolved.category, resolved.priority).resolve_s
    assert flag_overdue(resolved, resolve_due + 1).events == []  # resolved: not running
    reopened_at = resolve_due + 10
    reopened = handle_command(resolved, command(resolved, "reopen", reopened_at), config)
    assert [e.type for e in reopened.events] == [pb.REQUEST_EVENT_TYPE_REOPENED]
    request = reopened.request
    assert request is not None and request.status == pb.REQUEST_STATUS_IN_PROGRESS
    # Not breached for the time it spent resolved: a whole window from the reopen.
    assert from_timestamp(request.sla.resolve_due) == reopened_at + window
    assert flag_overdue(request, resolve_due + 20).events == [] and not is_overdue(request)
    late = flag_overdue(request, reopened_at + window + 1)
    assert [e.sla_breach.kind for e in late.events] == [pb.SLA_KIND_RESOLVE]
    assert from_timestamp(late.events[0].sla_breach.due_time) == reopened_at + window


def test_a_request_breached_before_its_reopen_can_breach_again_with_a_new_event(
        config: RequestsConfig) -> None:
    in_progress = at_status(config, "IN_PROGRESS")
    first_due = from_timestamp(in_progress.sla.resolve_due)
    breached = flag_overdue(in_progress, first_due + 1)
    request = breached.request
    assert request is not None and is_overdue(request)
    resolved = handle_command(request, command(request, "resolve", first_due + 60), config).request
    assert resolved is not None
    reopened = handle_command(resolved, command(resolved, "reopen", first_due + 120), config).request
    assert reopened is not None and not is_overdue(reopened)
    second = flag_overdue(reopened, from_timestamp(reopened.sla.resolve_due) + 1)
    assert [e.sla_breach.kind for e in second.events] == [pb.SLA_KIND_RESOLVE]
    assert second.events[0].event_id != breached.events[0].event_id  # consumers keep both


def test_a_submit_that_arrives_after_its_due_time_is_breached_at_once(config: RequestsConfig) -> None:
    outcome = handle_command(None, new_submit(category="emergency", at=T0 + 3600, requested_at=T0), config)
    assert [e.type for e in outcome.events] == [pb.REQUEST_EVENT_TYPE_SUBMITTED,
                                                pb.REQUEST_EVENT_TYPE_SLA_BREACHED]
    assert outcome.request is not None and outcome.request.version == 2


def test_rejected_commands_flag_nothing_even_when_late(config: RequestsConfig) -> None:
    request = submitted(config, category="emergency")
    late = T0 + 3600
    outcome = handle_command(request, command(request, "start", late), config)
    assert outcome.request == request and len(outcome.events) == 1


def test_history_is_bounded_to_the_newest_entries(config: RequestsConfig) -> None:
    request = submitted(config)
    for i in range(10):
        outcome = handle_command(request, command(request, "comment", T0 + i, text=f"c{i}"), config,
                                 history_limit=4)
        assert outcome.request is not None
        request = outcome.request
    assert [h.note for h in request.history] == ["c6", "c7", "c8", "c9"]
    assert request.version == 11 and request.comment_count == 10


# ---- idempotency at the domain level

def test_a_submit_with_a_known_key_returns_the_original_request(config: RequestsConfig) -> None:
    request = at_status(config, "ACKNOWLEDGED")
    retry = new_submit(at=T0 + 90)  # a retry: new command, later requested time, the same body
    assert retry.request_id == request.request_id
    outcome = handle_command(request, retry, config)
    [event] = outcome.events
    assert event.type == pb.REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED
    assert event.request == request and event.version == request.version
    assert not outcome.changed and outcome.request == request


@pytest.mark.parametrize(
    "change, field",
    [
        ({"description": "Jalan berlubang (dikirim ulang)"}, "description"),
        ({"category": "waste"}, "category"),
        ({"title": "Lain"}, "title"),
        ({"address": "Jl. Lain"}, "address"),
        ({"latitude": -7.0, "longitude": 109.0}, "location"),
        ({"media_url": "https://example.org/x.jpg"}, "media_url"),
        ({"priority": pb.PRIORITY_EMERGENCY}, "priority"),
        ({"encrypted_reporter": pb.EncryptedContact(subject_id="another-subject")}, "reporter"),
    ],
)
def test_a_known_key_with_a_different_body_is_refused_naming_the_key(
        config: RequestsConfig, change: dict[str, object], field: str) -> None:
    request = at_status(config, "ACKNOWLEDGED")
    retry = new_submit(at=T0 + 90, **change)  # type: ignore[arg-type]
    assert retry.request_id == request.request_id
    outcome = handle_command(request, retry, config)
    [event] = outcome.events
    assert event.type == pb.REQUEST_EVENT_TYPE_COMMAND_REJECTED
    assert event.rejection_code == pb.REJECTION_CODE_ALREADY_EXISTS
    assert "idempotency key 'k1'" in event.rejection_reason and field in event.rejection_reason
    assert not outcome.changed and outcome.request == request


def test_texts_that_differ_only_in_surrounding_whitespace_are_the_same_body(config: RequestsConfig) -> None:
    request = submitted(config)
    retry = new_submit(at=T0 + 5)
    retry.submit.description = f"  {retry.submit.description}\n"
    assert handle_command(request, retry, config).events[0].type == pb.REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED


def test_a_submit_for_an_existing_id_with_another_key_is_rejected(config: RequestsConfig) -> None:
    request = submitted(config)
    other = new_submit(key="k2")
    other.request_id = request.request_id
    outcome = handle_command(request, other, config)
    assert outcome.events[0].rejection_code == pb.REJECTION_CODE_ALREADY_EXISTS
    assert outcome.request == request


def test_to_timestamp_round_trips_due_times() -> None:
    assert from_timestamp(to_timestamp(T0 + 0.25)) == T0 + 0.25


def test_the_contact_envelope_is_carried_untouched_and_plaintext_is_never_kept(
        config: RequestsConfig) -> None:
    sealed = pb.EncryptedContact(subject_id="subj-1", data_key_id="dk-1", algorithm="AES-256-GCM",
                                 nonce=b"n" * 12, ciphertext=b"opaque")
    submit = new_submit(encrypted_reporter=sealed)
    submit.submit.reporter.CopyFrom(pb.Reporter(name="Siti", phone="0812"))  # not from the gateway
    outcome = handle_command(None, submit, config)
    assert outcome.request is not None and outcome.request.encrypted_reporter == sealed
    assert not outcome.request.HasField("reporter")
    assert outcome.events[0].request.encrypted_reporter == sealed
    acked = handle_command(outcome.request, command(outcome.request, "acknowledge", T0 + 60), config)
    assert acked.request is not None and acked.request.encrypted_reporter == sealed


def test_a_retry_sealed_anew_for_the_same_contact_is_the_same_body(config: RequestsConfig) -> None:
    sealed = pb.EncryptedContact(subject_id="subject-1", data_key_id="k", nonce=b"1" * 12, ciphertext=b"a")
    request = handle_command(None, new_submit(encrypted_reporter=sealed), config).request
    assert request is not None
    resealed = pb.EncryptedContact(subject_id="subject-1", data_key_id="k", nonce=b"2" * 12, ciphertext=b"b")
    retry = new_submit(at=T0 + 5, encrypted_reporter=resealed)
    assert handle_command(request, retry, config).events[0].type == pb.REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED
