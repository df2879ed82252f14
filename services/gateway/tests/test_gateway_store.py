"""The history store without Kafka: batch rules, rows and checkpoint in one transaction,
listings and trails read back, contact fields apart, unusable files set aside."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aiokafka.structs import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.adapters.history_store import (
    _INSERT_EVENT,
    _INSERT_REQUEST,
    _ON_CONFLICT_REQUEST,
    _SCHEMA,
    HistoryStore,
    StoreLocked,
    _insert,
    _statement,
    mark_of,
)
from gateway.adapters.rebuild import decode_record, state_batch, trail_batch
from gateway.adapters.request_history import Carried, HistoryRecord, RequestHistory
from gateway.core.history import (
    TRAIL_PARTITION_BITS,
    Known,
    NotAnEvent,
    RequestBatch,
    RequestCounts,
    RequestFilter,
    StateRequest,
    TrailRow,
    count_key,
    event_key,
    plan_requests,
    stored_event,
    stored_request,
    trail_position,
    trail_row,
)
from gateway.core.views import Views
from gateway_testing import incident
from gateway_testing import service_request as _service_request
from smartcity import topic_names
from smartcity.codec import ProtoCodec
from smartcity.request_rules import OPEN_STATUSES
from smartcity.topics import load_catalogue
from smartcity.v1 import requests_pb2

RS = requests_pb2
TOPICS = ["p.requests.events.v1", "p.requests.state.v1", "p.camera.incidents.v1"]
EVENTS = TOPICS[0]


def store_at(path: Path, topics: list[str] = TOPICS) -> HistoryStore:
    return HistoryStore(path, topics, cache_mib=4).open()


def service_request(request_id: str, **fields: Any) -> Any:
    """A request as citizen-requests writes it now: no plaintext reporter (unless asked for)."""
    return _service_request(request_id, **{"reporter": False, **fields})


def sealed(request: Any, subject: str = "subject-siti") -> Any:
    """The request with a sealed contact as citizen-requests writes it (an envelope the store
    never opens; a plaintext reporter from before sealing is left on, which it must drop)."""
    request.encrypted_reporter.subject_id = subject
    request.encrypted_reporter.data_key_id = f"dk-{subject}"
    request.encrypted_reporter.ciphertext = b"\x01sealed-bytes"
    return request


def event_of(request: Any, n: int) -> Any:
    event = RS.RequestEvent(
        event_id=f"ev-{request.request_id}-{n}",
        request_id=request.request_id,
        version=request.version,
        type=RS.REQUEST_EVENT_TYPE_SUBMITTED,
    )
    event.request.CopyFrom(request)
    return event


def write(
    store: HistoryStore,
    requests: Sequence[Any],
    offset: int,
    events: Sequence[Any] = (),
    incidents: Sequence[Any] = (),
) -> RequestBatch:
    arrivals = [(r.request_id, r) for r in requests]
    known = store.known({r for r, _ in arrivals})
    batch = plan_requests(arrivals, known)
    rows = [
        (e.request_id, event_key(e, 0, offset + i), trail_position(0, offset + i), stored_event(e))
        for i, e in enumerate(events)
    ]
    store.commit(batch, known, rows, incidents, {(EVENTS, 0): offset})
    return batch


# ---------------- rules ----------------


def test_the_newest_version_wins_and_watchers_hear_each_newer_one_in_order() -> None:
    v1, v2, v3 = (service_request("r1", version=v) for v in (1, 2, 3))
    batch = plan_requests([("r1", v1), ("r1", v3), ("r1", v2), ("r1", v3)], known={})
    assert batch.winners["r1"].version == 3
    assert [r.version for r in batch.changes] == [1, 3]  # v2 came late, the second v3 is a repeat
    assert batch.winners["r1"] is v3
    assert batch.count_deltas[count_key(v3)] == 1


def test_a_known_newer_version_is_kept_and_counts_move_with_status() -> None:
    old = service_request("r1", version=4, status=RS.REQUEST_STATUS_SUBMITTED)
    known = {"r1": Known(4, count_key(old))}
    assert plan_requests([("r1", service_request("r1", version=3))], known).winners == {}
    closed = service_request("r1", version=5, status=RS.REQUEST_STATUS_CLOSED)
    batch = plan_requests([("r1", closed)], known)
    assert batch.count_deltas == {count_key(old): -1, count_key(closed): 1}
    tombstone = plan_requests([("r1", None)], known)
    assert tombstone.winners == {"r1": None} and tombstone.count_deltas == {count_key(old): -1}


def test_counts_total_by_filter_and_visibility() -> None:
    counts = RequestCounts()
    counts.apply(
        {
            ("PUPR", "roads", 6, "portal"): 3,
            ("DLH", "waste", 1, "pupr-app"): 2,
            ("DLH", "waste", 6, "portal"): 1,
        }
    )
    assert counts.total() == 6
    assert counts.total(opd_code="DLH") == 3
    assert counts.total(opd_code="DLH", status=6) == 1
    assert counts.total(visible=lambda opd, client: opd == "PUPR" or client == "pupr-app") == 5
    counts.apply({("DLH", "waste", 6, "portal"): -1})
    assert counts.as_dict() == {("PUPR", "roads", 6, "portal"): 3, ("DLH", "waste", 1, "pupr-app"): 2}


# ---------------- the store ----------------


def test_rows_and_checkpoint_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    store = store_at(path)
    assert store.rebuild_reason == "no store on disk"
    first = service_request("r1", version=1, requested=1000.0)
    write(store, [first, service_request("r2", requested=2000.0)], offset=2, events=[event_of(first, 1)])
    store.close()

    store = store_at(path)
    assert store.rebuild_reason == ""  # warm
    assert store.checkpoint() == {(EVENTS, 0): 2}
    assert [r.request_id for r in store.list_requests(RequestFilter(), None, 10)] == ["r2", "r1"]
    assert store.get_request("r1") == first
    assert sum(store.counts().values()) == 2
    store.close()


def test_a_new_version_replaces_the_row_and_moves_its_counts(tmp_path: Path) -> None:
    store = store_at(tmp_path / "h.sqlite3")
    write(store, [service_request("r1", version=1, requested=1000.0)], offset=1)
    closed = service_request("r1", version=2, status=RS.REQUEST_STATUS_CLOSED, requested=1000.0)
    write(store, [closed, service_request("r1", version=1, requested=1000.0)], offset=3)  # v1 late again
    assert store.get_request("r1") == closed
    assert [
        r.version for r in store.list_requests(RequestFilter(status=RS.REQUEST_STATUS_CLOSED), None, 5)
    ] == [2]
    assert store.list_requests(RequestFilter(status=RS.REQUEST_STATUS_SUBMITTED), None, 5) == []
    assert store.counts() == {count_key(closed): 1}
    moved = service_request(
        "r1", version=3, opd_code="DLH", status=RS.REQUEST_STATUS_CLOSED, requested=1000.0
    )
    write(store, [moved], offset=4)  # re-routed: the listing indexes follow
    assert [r.request_id for r in store.list_requests(RequestFilter(opd_code="DLH"), None, 5)] == ["r1"]
    assert store.list_requests(RequestFilter(opd_code="DPMPTSP"), None, 5) == []
    store.close()


def test_a_batch_that_fails_leaves_rows_and_checkpoint_as_they_were(tmp_path: Path) -> None:
    store = store_at(tmp_path / "h.sqlite3")
    write(store, [service_request("r1")], offset=1)
    batch = plan_requests([("r2", service_request("r2"))], {})
    with pytest.raises(AttributeError):
        # A broken row after the batch's requests were written: nothing of the batch may stay.
        store.commit(batch, {}, [], [object()], {(EVENTS, 0): 9})
    assert store.checkpoint() == {(EVENTS, 0): 1}
    assert store.get_request("r2") is None
    store.close()


def test_listings_filter_page_and_respect_visibility(tmp_path: Path) -> None:
    store = store_at(tmp_path / "h.sqlite3")
    requests = [
        service_request(
            f"r{i:02d}",
            opd_code=("PUPR", "DLH")[i % 2],
            category=("roads", "waste")[i % 2],
            status=(RS.REQUEST_STATUS_CLOSED, RS.REQUEST_STATUS_SUBMITTED)[i % 3 == 0],
            submitted_by=("portal", "pupr-app")[i % 5 == 0],
            requested=1000.0 + i,
        )
        for i in range(30)
    ]
    write(store, requests, offset=30)
    newest_first = sorted(requests, key=lambda r: -r.requested_time.seconds)

    def ids(flt: RequestFilter, size: int = 100) -> list[str]:
        found, after = [], None
        while True:
            page = store.list_requests(flt, after, size)
            found += [r.request_id for r in page]
            if len(page) < size:
                return found
            after = (-float(page[-1].requested_time.seconds), page[-1].request_id)

    assert ids(RequestFilter(), size=7) == [r.request_id for r in newest_first]
    assert ids(RequestFilter(opd_code="DLH", status=RS.REQUEST_STATUS_SUBMITTED), size=2) == [
        r.request_id for r in newest_first if r.opd_code == "DLH" and r.status == RS.REQUEST_STATUS_SUBMITTED
    ]
    visible = ids(RequestFilter(visible_to=("DLH", "pupr-app")), size=4)
    assert visible == [
        r.request_id for r in newest_first if r.opd_code == "DLH" or r.submitted_by_client == "pupr-app"
    ]
    assert (
        store.counts()
        == RequestCounts(
            {k: sum(1 for r in requests if count_key(r) == k) for k in map(count_key, requests)}
        ).as_dict()
    )
    store.close()


def test_the_trail_keeps_arrival_order_drops_repeats_and_holds_contact_fields_once(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = store_at(path)
    request = sealed(service_request("r1", reporter=True))
    request.history.add(version=1)
    events = [event_of(request, n) for n in range(5)]
    write(store, [request], offset=5, events=[*events, events[1]])  # the last one redelivered
    trail = store.list_events("r1", 0, 100)
    assert [e.event.event_id for e in trail] == [e.event_id for e in events]
    assert all(not e.event.request.history for e in trail)  # the trail is the history
    assert all(e.event.request.encrypted_reporter == request.encrypted_reporter for e in trail)
    assert all(not e.event.request.HasField("reporter") for e in trail)
    rows = store._r.execute("SELECT body FROM events").fetchall()
    assert all(b"sealed-bytes" not in body for (body,) in rows)  # held once, with the request
    second_page = store.list_events("r1", trail[1].position, 2)
    assert [e.event.event_id for e in second_page] == [events[2].event_id, events[3].event_id]
    assert [r.request_id for r in store.of_subject("subject-siti")] == ["r1"]
    uses = list(store.contact_uses(["subject-siti", "subject-other"]))
    assert [(u.request_id, u.encrypted_reporter.subject_id) for u in uses] == [("r1", "subject-siti")]
    assert list(store.contact_uses(["subject-other"])) == []

    assert store.drop_contact("r1")
    erased = store.get_request("r1")
    assert erased is not None and not erased.HasField("encrypted_reporter")
    assert all(not e.event.request.HasField("encrypted_reporter") for e in store.list_events("r1", 0, 100))
    store._w.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    # A plaintext reporter (a record from before sealing) is never written anywhere.
    assert b"siti@example.id" not in path.read_bytes()


def test_incidents_keep_their_resolution_and_the_most_recent_are_kept(tmp_path: Path) -> None:
    store = store_at(tmp_path / "h.sqlite3")
    write(store, [], 1, incidents=[incident(f"i{n}", "cam-1", opened=1000.0 + n) for n in range(4)])
    write(
        store,
        [],
        2,
        incidents=[incident(f"i{n}", "cam-1", resolved=True, opened=1000.0 + n) for n in range(3)],
    )
    write(store, [], 3, incidents=[incident("i0", "cam-1", opened=1000.0)])  # a late "opened"
    kept = store.incidents_to_keep(max_resolved=2)
    assert [(i.incident_id, i.phase) for i in kept] == [("i3", 1), ("i1", 2), ("i2", 2)]
    store.close()


# ---------------- unusable stores ----------------


def test_garbage_in_the_file_sets_it_aside_and_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = store_at(path)
    write(store, [service_request(f"r{i}") for i in range(200)], offset=200)
    store.close()
    with path.open("r+b") as f:  # garbage over the header and the first pages
        f.write(b"\xde\xad\xbe\xef" * 4096)
    store = store_at(path)
    assert "not a usable SQLite database" in store.rebuild_reason
    assert store.checkpoint() == {} and store.get_request("r1") is None
    assert (tmp_path / "h.sqlite3.set-aside").exists()
    store.close()


def test_damage_inside_the_file_fails_the_integrity_check(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = store_at(path)
    write(store, [service_request(f"r{i:05d}") for i in range(3000)], offset=3000)
    store._w.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    size = path.stat().st_size
    with path.open("r+b") as f:  # past the header: the file still opens, its pages are wrong
        f.seek(size // 2)
        f.write(b"\x00\xff" * 8192)
    store = store_at(path)
    assert store.rebuild_reason.startswith(("integrity check failed", "not a usable SQLite database"))
    assert store.checkpoint() == {}
    store.close()


def test_other_schema_version_or_other_topics_are_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = store_at(path)
    write(store, [service_request("r1")], offset=1)
    store._w.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    store.close()
    store = store_at(path)
    assert "schema version '0'" in store.rebuild_reason and store.checkpoint() == {}
    write(store, [service_request("r1")], offset=1)
    store.close()
    store = store_at(path, topics=["q.requests.events.v1"])
    assert "other topics" in store.rebuild_reason
    store.close()


def test_reset_sets_the_store_aside_and_a_second_process_cannot_share_it(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = store_at(path)
    write(store, [service_request("r1")], offset=1)
    with pytest.raises(StoreLocked, match="GATEWAY_STORE_PATH"):
        store_at(path)
    store.reset("checkpoint ahead of the topic's end")
    assert store.checkpoint() == {} and store.rebuild_reason.startswith("checkpoint ahead")
    store.close()


def test_a_snapshot_stream_does_not_see_batches_committed_after_it_began(tmp_path: Path) -> None:
    store = store_at(tmp_path / "h.sqlite3")
    write(store, [service_request(f"r{i}", requested=1000.0 + i) for i in range(1200)], offset=1200)
    snapshot = store.snapshot_requests(page=100)
    first = next(snapshot)
    write(store, [service_request("r-new", requested=5000.0)], offset=1201)
    rest = list(snapshot)
    assert first.request_id == "r1199" and len(rest) == 1199
    assert "r-new" not in {r.request_id for r in rest}
    assert store.get_request("r-new") is not None
    store.close()


def test_a_rebuild_batch_may_strip_its_messages_but_open_requests_reach_memory_whole(tmp_path: Path) -> None:
    views = Views()
    history = RequestHistory(store_at(tmp_path / "h.sqlite3"), views, OPEN_STATUSES)
    records = []
    for n, status in enumerate((RS.REQUEST_STATUS_SUBMITTED, RS.REQUEST_STATUS_CLOSED)):
        request = sealed(service_request(f"r{n}", status=status, reporter=False))
        request.history.add(version=1)
        records.append(HistoryRecord("events", 0, n, request.request_id, event_of(request, 1)))
    history.remember(history.write(records, {(EVENTS, 0): 2}, owned=True))
    kept = views.open_requests["r0"]
    assert kept.HasField("encrypted_reporter") and len(kept.history) == 1
    for request_id in ("r0", "r1"):
        stored = history.get(request_id)
        assert stored is not None and stored.HasField("encrypted_reporter") and len(stored.history) == 1
        trail, _ = history.trail(request_id, 0, 5)
        assert trail[0].event.request.HasField("encrypted_reporter") and not trail[0].event.request.history
    history.store.close()


def test_a_trail_row_read_without_decoding_is_the_stored_event_without_history_or_contact() -> None:
    request = sealed(service_request("r1", reporter=True, version=3))
    request.history.add(version=1, note="first")
    request.history.add(version=2, note="second")
    event = event_of(request, 2)
    event.note = "looked at it"
    canonical = event.SerializeToString(deterministic=True)
    (request_id, key, position, body), carried_id, version = trail_row(canonical, "key-r1", 4, 17)
    assert (request_id, key, carried_id, version) == ("r1", "ev-r1-2", "r1", 3)
    assert position == trail_position(4, 17) == 18 << TRAIL_PARTITION_BITS | 4
    assert RS.RequestEvent.FromString(body) == RS.RequestEvent.FromString(stored_event(event))
    assert b"siti@example.id" not in body and b"sealed-bytes" not in body
    # Fields in any order and a message given in two parts (protobuf merges them) read the same.
    own = RS.RequestEvent(event_id="ev-x")
    own.request.version = 4
    head = RS.RequestEvent()
    head.CopyFrom(event)
    head.ClearField("event_id")
    (_, key, _, body), _, version = trail_row(head.SerializeToString() + own.SerializeToString(), "", 0, 0)
    merged = RS.RequestEvent.FromString(head.SerializeToString() + own.SerializeToString())
    assert (key, version) == ("ev-x", 4)
    assert RS.RequestEvent.FromString(body) == RS.RequestEvent.FromString(stored_event(merged))
    # No event id, no request id, no request: the key and the record's place stand in.
    bare = RS.RequestEvent(type=RS.REQUEST_EVENT_TYPE_COMMAND_REJECTED).SerializeToString()
    assert trail_row(bare, "r9", 2, 5) == (("r9", "@2:5", trail_position(2, 5), bare), "", 0)


def test_requests_read_as_a_rebuild_reads_them_are_stored_as_the_full_messages_are(tmp_path: Path) -> None:
    requests = []
    statuses = (RS.REQUEST_STATUS_SUBMITTED, RS.REQUEST_STATUS_CLOSED, RS.REQUEST_STATUS_REJECTED)
    for n, status in enumerate(statuses):
        request = service_request(f"r{n}", status=status, version=n + 2, reporter=n == 1)
        request.history.add(version=1, note="first")
        requests.append(sealed(request, subject=f"subject-{n}") if n < 2 else request)
    values = [r.SerializeToString(deterministic=True) for r in requests]
    slim = [StateRequest.FromString(v) for v in values]
    for full, light in zip(requests, slim, strict=True):
        body, contact = stored_request(light, in_place=True)
        expected_body, expected_contact = stored_request(full)
        assert RS.ServiceRequest.FromString(body) == RS.ServiceRequest.FromString(expected_body)
        assert (contact is None) == (expected_contact is None)
        if contact is not None and expected_contact is not None:
            assert RS.EncryptedContact.FromString(contact) == RS.EncryptedContact.FromString(expected_contact)
        assert b"siti@example.id" not in body
    answers = []
    for name, kind in (("full", RS.ServiceRequest), ("slim", StateRequest)):
        messages = [kind.FromString(v) for v in values]
        history = RequestHistory(store_at(tmp_path / f"{name}.sqlite3"), Views(), OPEN_STATUSES)
        records = [HistoryRecord("requests", 0, n, m.request_id, m) for n, m in enumerate(messages)]
        history.write(records, {(TOPICS[1], 0): 3}, owned=True)
        store = history.store
        answers.append(
            (
                [store.get_request(r.request_id) for r in requests],
                store.counts(),
                store.list_requests(RequestFilter(), None, 10),
                [u.request_id for u in store.contact_uses(["subject-0", "subject-1"])],
                store._r.execute("SELECT * FROM requests ORDER BY request_id").fetchall(),
            )
        )
        store.close()
    assert answers[0][:4] == answers[1][:4]
    kept = answers[1][0]
    assert kept[1] is not None and not kept[1].HasField("reporter")  # the plaintext is dropped
    assert kept[1].encrypted_reporter == requests[1].encrypted_reporter and kept[1].history
    # Whose contact each holds survives stripping the messages in place (erasure and retention
    # find a subject's requests by it).
    assert answers[0][3] == answers[1][3] == ["r0", "r1"]
    for full_row, slim_row in zip(answers[0][4], answers[1][4], strict=True):
        assert full_row[:9] == slim_row[:9]  # the columns
        assert RS.ServiceRequest.FromString(full_row[9]) == RS.ServiceRequest.FromString(slim_row[9])
        assert full_row[10] is None or RS.EncryptedContact.FromString(
            full_row[10]
        ) == RS.EncryptedContact.FromString(slim_row[10])


def test_a_stored_event_that_does_not_decode_is_skipped_by_the_trail(tmp_path: Path) -> None:
    store = store_at(tmp_path / "h.sqlite3")
    good = stored_event(event_of(service_request("r1"), 1))
    # Parses as far as trail_row reads (it never opens the actor) but is no RequestEvent.
    bad = RS.RequestEvent(event_id="ev-bad").SerializeToString() + b"\x3a\x02\xff\xff"
    rows: list[TrailRow] = [("r1", "ev-bad", 1, bad), ("r1", "ev-1", 2, good)]
    store.commit(RequestBatch(), {}, rows, (), {(EVENTS, 0): 2})
    assert [e.event.event_id for e in store.list_events("r1", 0, 10)] == ["ev-r1-1"]
    store.close()


def test_a_rebuilt_trail_takes_a_carried_request_only_when_newer_than_the_stored_one(tmp_path: Path) -> None:
    history = RequestHistory(store_at(tmp_path / "h.sqlite3"), Views(), OPEN_STATUSES)
    closed = sealed(service_request("r1", version=6, status=RS.REQUEST_STATUS_CLOSED))
    write(history.store, [closed], offset=1)  # the state topic, read first
    older = sealed(service_request("r1", version=2, status=RS.REQUEST_STATUS_ACKNOWLEDGED))
    newer = sealed(service_request("r2", version=7, status=RS.REQUEST_STATUS_IN_PROGRESS))
    values = [event_of(r, n).SerializeToString() for n, r in enumerate((older, newer))]
    rows: list[TrailRow] = []
    carried: list[Carried] = []
    for offset, value in enumerate(values):
        row, request_id, version = trail_row(value, "", 0, offset)
        carried.append((len(rows), request_id, version, value))
        rows.append(row)
    batch = history.write_trail(rows, carried, {(EVENTS, 0): 2})
    assert list(batch.winners) == ["r2"]  # r1's stored version 6 is newer than the event's 2
    assert history.get("r1") == closed
    kept = history.get("r2")
    assert kept is not None and kept.version == 7 and kept.encrypted_reporter == newer.encrypted_reporter
    assert [e.event.request.version for e in history.trail("r1", 0, 5)[0]] == [2]
    assert history.store.counts() == {count_key(closed): 1, count_key(newer): 1}
    bodies = history.store._r.execute("SELECT body FROM events").fetchall()
    assert all(b"sealed-bytes" not in body for (body,) in bodies)
    history.store.close()


def test_newer_than_stored_compares_every_pair_across_statements(tmp_path: Path) -> None:
    store = store_at(tmp_path / "h.sqlite3")
    write(store, [service_request(f"r{i:04d}", version=5) for i in range(600)], offset=600)
    # Older, equal, newer and never-stored requests, more pairs than one statement compares.
    pairs = [(f"r{i:04d}", 4 + i % 3) for i in range(600)] + [(f"new{i}", 1) for i in range(400)]
    newer = store.newer_than_stored(pairs)
    expected = {(f"r{i:04d}", 6) for i in range(600) if i % 3 == 2} | {(f"new{i}", 1) for i in range(400)}
    assert newer == expected
    assert store.newer_than_stored([]) == set()
    store.close()


def test_a_store_built_from_another_kafka_cluster_is_set_aside(tmp_path: Path) -> None:
    store = store_at(tmp_path / "h.sqlite3")
    store.bind_cluster("cluster-a")
    write(store, [service_request("r1")], offset=1)
    store.bind_cluster("cluster-a")  # the same cluster: kept
    assert store.checkpoint() == {(EVENTS, 0): 1}
    store.bind_cluster("cluster-b")  # a reset broker: same topic names, other records
    assert store.checkpoint() == {} and "another Kafka cluster" in store.rebuild_reason
    store.close()
    store = store_at(tmp_path / "h.sqlite3")
    store.bind_cluster("cluster-b")
    assert store.rebuild_reason == "the store holds no checkpoint yet"
    store.close()


def test_a_large_store_opens_unverified_and_its_page_check_finds_the_damage(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    store = store_at(path)
    write(store, [service_request(f"r{i:05d}") for i in range(3000)], offset=3000)
    store._w.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    with path.open("r+b") as f:
        f.seek(path.stat().st_size // 2)
        f.write(b"\x00\xff" * 8192)
    store = HistoryStore(path, TOPICS, cache_mib=4, check_at_open_mib=0).open()
    assert store.unverified and store.rebuild_reason == ""  # opened warm, checked later
    problem = store.verify()
    assert problem.startswith("integrity check failed")
    store.condemn(problem)
    store.close()
    store = store_at(path)
    assert store.rebuild_reason == "no store on disk"  # the next start rebuilds
    assert (tmp_path / "h.sqlite3.set-aside").exists()
    store.close()


def test_an_unsynced_rebuild_resumes_after_a_crash_but_not_after_the_machine_went_down(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.sqlite3"
    store = store_at(path)
    store.begin_rebuild()
    write(store, [service_request("r1")], offset=1)
    store.close()  # the process stops mid-rebuild: what it committed is in the file
    store = store_at(path)
    assert store.rebuild_reason == "" and store.rebuilding and store.checkpoint() == {(EVENTS, 0): 1}
    store.leave_bulk_mode()  # caught up: serving, the rebuilt pages not yet on disk
    write(store, [service_request("r2")], offset=2)
    assert store.rebuilding
    store.close()  # stopped before they were: the next start still knows
    store = store_at(path)
    assert store.rebuild_reason == "" and store.rebuilding and store.checkpoint() == {(EVENTS, 0): 2}
    store.end_rebuild()
    assert not store.rebuilding and store._w.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    store.close()
    store = store_at(path)
    assert not store.rebuilding and store.get_request("r2") is not None
    store.begin_rebuild()
    store._w.execute("UPDATE meta SET value = 'an-earlier-boot' WHERE key = 'rebuilding'")
    store.close()
    store = store_at(path)
    assert "machine going down" in store.rebuild_reason and store.checkpoint() == {}
    assert not store.rebuilding  # the new file: the projector begins its rebuild anew
    store.close()


def listing_indexes(store: HistoryStore) -> set[str]:
    rows = store._w.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'requests_%'"
        " AND name != 'requests_id'"
    )
    return {name for (name,) in rows}


def test_a_rebuild_into_an_empty_store_builds_the_listing_indexes_once_the_requests_are_in(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.sqlite3"
    store = store_at(path)
    every = {"requests_city", "requests_opd", "requests_status", "requests_subject"}
    assert listing_indexes(store) == every
    store.begin_rebuild()
    assert listing_indexes(store) == set()  # written row by row without them
    first, second = sealed(service_request("r1", requested=1000.0)), service_request("r2", requested=2000.0)
    write(store, [first, second], 2)
    store.close()  # cut short: the next start resumes the rebuild, still without them
    store = store_at(path)
    assert store.rebuilding and listing_indexes(store) == set()
    store.begin_rebuild()  # (the resumed rebuild) the rows stay, nothing is dropped twice
    store.build_indexes()
    assert listing_indexes(store) == every
    plan = store._w.execute(
        "EXPLAIN QUERY PLAN SELECT body FROM requests WHERE opd_code = 'PUPR' ORDER BY listing_time LIMIT 5"
    ).fetchall()
    assert any("requests_opd" in str(step) for step in plan), plan
    assert [r.request_id for r in store.list_requests(RequestFilter(), None, 10)] == ["r2", "r1"]
    assert [r.request_id for r in store.of_subject("subject-siti")] == ["r1"]
    store.close()


def test_a_rebuild_that_never_built_them_gets_its_listing_indexes_before_it_serves(tmp_path: Path) -> None:
    store = store_at(tmp_path / "h.sqlite3")
    store.begin_rebuild()
    write(store, [service_request("r1")], 1)
    store.leave_bulk_mode()  # caught up
    assert len(listing_indexes(store)) == 4
    store.close()


def trail_index(store: HistoryStore) -> list[Any]:
    found = store._w.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'events_trail'")
    return found.fetchall()


def test_a_rebuild_appends_the_trail_unindexed_and_keeps_an_event_held_twice_once_when_it_builds_the_index(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.sqlite3"
    store = store_at(path)
    assert trail_index(store) == [("CREATE UNIQUE INDEX events_trail ON events (request_id, event_key)",)]
    store.begin_rebuild()
    assert trail_index(store) == []  # appended row by row without it
    first, second = service_request("r1"), service_request("r2")
    a = [event_of(first, n) for n in range(3)]
    b = [event_of(second, n) for n in range(2)]
    write(store, [first, second], 5, events=[a[0], b[0], a[1], a[0]])  # a[0] twice in a batch
    store.close()  # cut short: the next start resumes the rebuild, still without it
    store = store_at(path)
    assert store.rebuilding and trail_index(store) == []
    store.begin_rebuild()  # (the resumed rebuild) the rows stay
    write(store, [], 9, events=[b[1], a[1], a[2], b[0]])  # a[1] and b[0] again, later
    assert store._r.execute("SELECT count(*) FROM events").fetchone() == (8,)
    store.leave_bulk_mode()  # caught up: the index is built, the later copies go first
    assert len(trail_index(store)) == 1
    assert [e.event.event_id for e in store.list_events("r1", 0, 10)] == [e.event_id for e in a]
    trail = store.list_events("r2", 0, 10)
    assert [e.event.event_id for e in trail] == [e.event_id for e in b]
    # The first arrivals keep their places (the events of a batch written at offset n sit at n, n+1...).
    assert [e.position for e in trail] == [trail_position(0, 6), trail_position(0, 9)]
    write(store, [], 10, events=[a[2]])  # live: a redelivered event is ignored again
    assert [e.event.event_id for e in store.list_events("r1", 0, 10)] == [e.event_id for e in a]
    plan = store._r.execute("EXPLAIN QUERY PLAN SELECT body FROM events WHERE request_id = 'r1'").fetchall()
    assert any("events_trail" in str(step) for step in plan), plan
    store.close()


def test_a_rebuild_that_had_rows_already_keeps_the_trail_index(tmp_path: Path) -> None:
    store = store_at(tmp_path / "h.sqlite3")
    request = service_request("r1")
    write(store, [request], 1, events=[event_of(request, 0)])
    store.begin_rebuild()  # not empty (a resumed rebuild's rows): nothing is dropped
    assert len(trail_index(store)) == 1
    store.close()


def _no_message(kind: str, offset: int, key: bytes | None) -> Any:
    """The records that hold no message: a tombstone, bytes that do not parse (None otherwise)."""
    if kind == "tombstone":
        return _Record(offset, key, None)
    if kind == "garbage":
        return _Record(offset, key, b"\x0a\x05ab")
    return None


@st.composite
def _event_records(draw: Any) -> list[Any]:
    """Records of an event topic as a rebuild reads them: events with and without ids, a
    request, a request id, contact fields and history; messages in two parts (protobuf merges
    them); tombstones; bytes that are no event; keys or none."""
    records = []
    for offset in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["event", "event", "event", "tombstone", "garbage"]))
        key = draw(st.sampled_from([None, b"", b"key-r1", b"r\xc3\xa9q"]))
        if (unparsed := _no_message(kind, offset, key)) is not None:
            records.append(unparsed)
            continue
        event = RS.RequestEvent(
            event_id=draw(st.sampled_from(["", "ev-1", "ev-2"])),
            request_id=draw(st.sampled_from(["", "r1", "r2"])),
            note=draw(st.sampled_from(["", "a note"])),
        )
        if draw(st.booleans()):
            request = service_request(
                draw(st.sampled_from(["", "r1", "r2"])),
                version=draw(st.integers(0, 9)),
                reporter=draw(st.booleans()),
            )
            if draw(st.booleans()):
                sealed(request)
            for version in range(draw(st.integers(0, 3))):
                request.history.add(version=version + 1, note="step")
            event.request.CopyFrom(request)
        value = event.SerializeToString()
        if draw(st.booleans()):  # in two parts
            own = RS.RequestEvent(event_id="ev-own")
            own.request.version = 11
            value += own.SerializeToString()
        records.append(_Record(offset, key, value))
    return records


class _Record(NamedTuple):
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 1700000000000


@settings(max_examples=200, deadline=None)
@given(st.lists(_event_records(), min_size=1, max_size=3))
def test_a_rebuild_reads_an_event_batch_as_trail_row_reads_each_record(partitions: list[list[Any]]) -> None:
    """rebuild.trail_batch (one message parsed into again and again) against trail_row (the
    general path, a message per record): the same rows, carried requests and outcomes."""
    batch = [(TopicPartition(EVENTS, n), found) for n, found in enumerate(partitions)]
    outcomes: Counter[str] = Counter()
    rows, carried, offsets, _ = trail_batch(batch, outcomes)
    expected_rows: list[TrailRow] = []
    expected_carried: list[Carried] = []
    expected: Counter[str] = Counter()
    for tp, found in batch:
        for record in found:
            if record.value is None:
                expected["tombstone"] += 1
                continue
            key = record.key.decode("utf-8", "replace") if record.key else ""
            try:
                row, request_id, version = trail_row(record.value, key, tp.partition, record.offset)
            except NotAnEvent:
                expected["undecodable"] += 1
                continue
            if request_id:
                expected_carried.append((len(expected_rows), request_id, version, record.value))
            expected_rows.append(row)
            expected["ok"] += 1
    assert rows == expected_rows
    assert carried == expected_carried
    assert +outcomes == +expected
    assert offsets == {(EVENTS, n): found[-1].offset + 1 for n, found in enumerate(partitions) if found}


def _event_topic(requests: int, events_each: int) -> dict[int, list[_Record]]:
    """An event topic of two partitions as citizen-requests fills it (a request's events on
    one partition), with one event delivered twice, later (a producer's retry)."""
    partitions: dict[int, list[_Record]] = {0: [], 1: []}
    for n in range(events_each):
        for r in range(requests):
            request = service_request(f"r{r}", version=n + 1)
            found = partitions[r % 2]
            value = event_of(request, n).SerializeToString()
            found.append(_Record(len(found), request.request_id.encode(), value))
    again = partitions[1][0]
    partitions[1].append(_Record(len(partitions[1]), again.key, again.value))
    return partitions


def _trails(history: RequestHistory, requests: int) -> dict[str, list[list[tuple[int, str]]]]:
    """Each request's trail, read two events a page, as (position, event id) per page."""
    trails = {}
    for r in range(requests):
        pages, after, more = [], 0, True
        while more:
            page, more = history.trail(f"r{r}", after, 2)
            pages.append([(e.position, e.event.event_id) for e in page])
            after = page[-1].position if page else after
        trails[f"r{r}"] = pages
    return trails


def test_every_partition_of_the_event_topic_fits_a_trail_position() -> None:
    assert load_catalogue()[topic_names.REQUESTS_EVENTS].partitions <= 1 << TRAIL_PARTITION_BITS
    assert trail_position(1023, 0) == 1 << TRAIL_PARTITION_BITS | 1023
    with pytest.raises(ValueError, match="partition 1024 does not fit"):
        trail_position(1024, 0)
    with pytest.raises(ValueError, match="partition 1024 does not fit"):
        trail_batch([(TopicPartition(EVENTS, 1024), [])], Counter())


def test_replicas_fed_the_same_topic_by_other_paths_and_batches_store_events_at_one_place(
    tmp_path: Path,
) -> None:
    """A page token of one replica reads on from the same place on another: a replica that
    read the topic live, record by record and partition 1 first, and one that rebuilt it in
    one batch of both (without decoding, index built after) store every event at one place."""
    partitions = _event_topic(requests=5, events_each=3)
    live = RequestHistory(store_at(tmp_path / "live.sqlite3"), Views(), OPEN_STATUSES)
    for partition in (1, 0):
        for record in partitions[partition]:
            assert record.key is not None and record.value is not None
            event = RS.RequestEvent.FromString(record.value)
            found = HistoryRecord("events", partition, record.offset, record.key.decode(), event)
            live.write([found], {(EVENTS, partition): record.offset + 1})
    rebuilt = RequestHistory(store_at(tmp_path / "rebuilt.sqlite3"), Views(), OPEN_STATUSES)
    rebuilt.store.begin_rebuild()
    batch = [(TopicPartition(EVENTS, p), found) for p, found in partitions.items()]
    rows, carried, offsets, _ = trail_batch(batch, Counter())
    rebuilt.write_trail(rows, carried, offsets)
    rebuilt.store.leave_bulk_mode()
    expected = _trails(live, 5)
    assert expected == _trails(rebuilt, 5)
    # Three events a request, two a page: the redelivered copy is dropped, the order kept.
    assert [len(page) for page in expected["r1"]] == [2, 1]
    assert [key for page in expected["r1"] for _, key in page] == ["ev-r1-0", "ev-r1-1", "ev-r1-2"]
    assert expected["r1"][0][0][0] == trail_position(1, 0)
    live.store.close()
    rebuilt.store.close()


@settings(max_examples=60, deadline=None)
@given(
    # Sizes drawn first: lists grown element by element rarely pass a statement's 50 rows.
    st.integers(0, 130).flatmap(
        lambda n: st.lists(
            st.tuples(st.sampled_from(["r1", "r2", "r3"]), st.integers(0, 60)), min_size=n, max_size=n
        )
    ),
    st.integers(0, 70).flatmap(
        lambda n: st.lists(
            st.tuples(st.integers(0, 70), st.integers(1, 9)),
            min_size=n,
            max_size=n,
            unique_by=lambda row: row[0],
        )
    ),
)
def test_rows_inserted_many_per_statement_are_inserted_as_one_statement_per_row_would(
    events: list[tuple[str, int]], requests: list[tuple[int, int]]
) -> None:
    """history_store._insert (many rows per statement) against executemany of one row each:
    the same rows, rowids (the trail's positions), ignored duplicates and upserted conflicts."""
    answers = []
    for many in (True, False):
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.executescript(_SCHEMA)
        # Requests already stored, so that some of the batch's are conflicts.
        db.executemany(
            _statement(_INSERT_REQUEST, 11, 1, ""),
            [(f"q{n}", 0, "OPD", "c", 1, "client", 0.0, None, 0.0, b"old", None) for n in range(0, 70, 3)],
        )
        event_rows = [(request_id, f"ev-{n}", n, f"body-{n}".encode()) for request_id, n in events]
        request_rows = [
            (f"q{n}", version, "OPD", "c", 2, "client", float(n), None, 1.0, b"new", None)
            for n, version in requests
        ]
        if many:
            _insert(db, _INSERT_EVENT, 4, event_rows)
            _insert(db, _INSERT_REQUEST, 11, request_rows, _ON_CONFLICT_REQUEST)
        else:
            db.executemany(_statement(_INSERT_EVENT, 4, 1, ""), event_rows)
            db.executemany(_statement(_INSERT_REQUEST, 11, 1, _ON_CONFLICT_REQUEST), request_rows)
        answers.append(
            (
                db.execute("SELECT rowid, * FROM events ORDER BY rowid").fetchall(),
                db.execute("SELECT rowid, * FROM requests ORDER BY rowid").fetchall(),
            )
        )
        db.close()
    assert answers[0] == answers[1]


STATES = TOPICS[1]


@st.composite
def _state_records(draw: Any) -> list[Any]:
    """Records of one partition of the state topic: versions of a few requests (newer, older,
    the same again; moved to another OPD or time; sealed, plaintext or no contact; histories),
    tombstones, bytes that are no request."""
    records = []
    for offset in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["request", "request", "request", "request", "tombstone", "garbage"]))
        request_id = draw(st.sampled_from(["", "r1", "r2", "r3"]))
        others = st.sampled_from([None, b"", b"r\xc3\xa9q"])
        key = request_id.encode() if draw(st.booleans()) else draw(others)
        if (unparsed := _no_message(kind, offset, key)) is not None:
            records.append(unparsed)
            continue
        request = service_request(
            request_id,
            version=draw(st.integers(0, 5)),
            status=draw(st.sampled_from([RS.REQUEST_STATUS_SUBMITTED, RS.REQUEST_STATUS_CLOSED])),
            opd_code=draw(st.sampled_from(["DPMPTSP", "PUPR"])),
            requested=draw(st.sampled_from([1_700_000_000.0, 1_700_000_000.123456789, 0.0])),
            reporter=draw(st.booleans()),
        )
        request.updated_time.seconds = draw(st.integers(0, 3))
        request.updated_time.nanos = draw(st.sampled_from([0, 1, 999_999_999]))
        if draw(st.booleans()):
            sealed(request, subject=draw(st.sampled_from(["subject-a", "subject-b"])))
        for version in range(draw(st.integers(0, 2))):
            request.history.add(version=version + 1, note="step")
        records.append(_Record(offset, key, request.SerializeToString()))
    return records


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_state_records(), min_size=1, max_size=3), min_size=1, max_size=3))
def test_a_rebuild_writes_a_state_batch_as_the_decoded_requests_are_written(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[list[Any]]]
) -> None:
    """rebuild.state_batch + RequestHistory.write_states (rows made straight from the records,
    one message parsed into again and again) against the general path (each record decoded,
    then RequestHistory.write): the same rows, byte for byte, the same counts, checkpoint and
    outcomes. And so when a rebuild's workers append them to an empty store without the
    requests' index (versions of a request in several batches, tombstones before and after
    them), once the store settles them."""
    answers = []
    for path in ("fast", "general", "appended"):
        store = store_at(tmp_path_factory.mktemp("store") / "h.sqlite3")
        if path == "appended":
            store.begin_rebuild()
            assert store.append_requests()
        history = RequestHistory(store, Views(), OPEN_STATUSES)
        codec: ProtoCodec[Any] = ProtoCodec(StateRequest)
        outcomes: Counter[str] = Counter()
        for partitions in batches:
            batch = [(TopicPartition(STATES, n), found) for n, found in enumerate(partitions)]
            if path != "general":
                arrivals, offsets, marks = state_batch(batch, outcomes)
                history.write_states(arrivals, offsets, marks)
                continue
            records = []
            for tp, found in batch:
                for record in found:
                    message = decode_record(codec, tp, record, outcomes)
                    if message is not None or record.value is None:
                        key = record.key.decode("utf-8", "replace") if record.key else ""
                        records.append(HistoryRecord("requests", tp.partition, record.offset, key, message))
            offsets = {(tp.topic, tp.partition): found[-1].offset + 1 for tp, found in batch if found}
            marks = {(tp.topic, tp.partition): mark_of(found[-1]) for tp, found in batch if found}
            history.write(records, offsets, True, marks)
        if path == "appended":
            store.settle_requests()
            assert not store.appending and store._r.execute("SELECT * FROM appended_deletes").fetchall() == []
            plan = store._r.execute("EXPLAIN QUERY PLAN SELECT body FROM requests WHERE request_id = 'r1'")
            assert any("requests_id" in str(step) for step in plan.fetchall())
        answers.append(
            (
                store._r.execute("SELECT * FROM requests ORDER BY request_id").fetchall(),
                store.counts(),
                store._r.execute("SELECT * FROM offsets ORDER BY topic, partition").fetchall(),
                +outcomes,
            )
        )
        store.close()
    assert answers[0] == answers[1] == answers[2]
