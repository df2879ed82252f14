"""Citizen-request RPCs against a running gateway and a fake citizen-requests service on Kafka."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from gateway_testing import (
    FakeRequestsService,
    GatewayProcess,
    Stubs,
    auth,
    produce,
    request_stats,
    rpc_error,
    submit_request,
)
from smartcity.ids import request_id_for
from smartcity.v1 import gateway_pb2, requests_pb2

pytestmark = pytest.mark.kafka
RS = requests_pb2
A = gateway_pb2


@pytest_asyncio.fixture(scope="module")
async def gw(
    module_prefix: str, module_starter: Any, tokens_file: Any, fake: FakeRequestsService, kafka_bootstrap: str
) -> GatewayProcess:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await produce(
            producer,
            module_prefix,
            "requests.stats.v1",
            "opd:BPBD",
            request_stats(RS.STATS_SCOPE_OPD, "BPBD", 4, 1),
        )
        await produce(
            producer,
            module_prefix,
            "requests.stats.v1",
            "category:emergency",
            request_stats(RS.STATS_SCOPE_CATEGORY, "emergency", 4, 1),
        )
    finally:
        await producer.stop()
    process: GatewayProcess = module_starter(
        module_prefix,
        tokens_file,
        GATEWAY_COMMAND_TIMEOUT_S="3",
        GATEWAY_RATE_LIMIT_RPS="1000",
        GATEWAY_RATE_LIMIT_BURST="1000",
    )
    await process.wait_serving()
    return process


def transition(request_id: str, action: Any, **fields: Any) -> Any:
    return A.TransitionRequestRequest(request_id=request_id, action=action, **fields)


async def get(stubs: Stubs, request_id: str, token: str) -> Any:
    return (
        await stubs.requests.GetRequest(A.GetRequestRequest(request_id=request_id), metadata=auth(token))
    ).request


async def test_submit_is_routed_and_the_submitter_sees_it_without_contact_details(stubs: Stubs) -> None:
    req = submit_request()
    reply = await stubs.requests.SubmitRequest(req, metadata=auth("t-portal"))
    request = reply.request
    assert request.request_id == request_id_for("citizen-portal", req.idempotency_key)
    assert (request.status, request.version, request.opd_code) == (RS.REQUEST_STATUS_SUBMITTED, 1, "DPMPTSP")
    assert not reply.deduplicated and not request.HasField("reporter")
    assert request.submitted_by_client == "citizen-portal" and request.title == req.title
    routed = await get(stubs, request.request_id, "t-dpmptsp")
    assert routed.reporter.phone == "+62 812 1111"  # the routed OPD sees who to call back


async def test_retried_submits_are_deduplicated(stubs: Stubs, fake: FakeRequestsService) -> None:
    req = submit_request(category="roads")
    replies = await asyncio.gather(
        *(stubs.requests.SubmitRequest(req, metadata=auth("t-portal")) for _ in range(5))
    )
    ids = {r.request.request_id for r in replies}
    assert len(ids) == 1
    assert sorted(r.deduplicated for r in replies) == [False, True, True, True, True]
    later = await stubs.requests.SubmitRequest(req, metadata=auth("t-portal"))
    assert later.deduplicated and later.request.request_id in ids and later.request.version == 1
    request_id = ids.pop()
    listed = await stubs.requests.ListRequests(A.ListRequestsRequest(category="roads"), metadata=auth("t-cc"))
    assert [r.request_id for r in listed.requests].count(request_id) == 1
    assert sum(1 for r in fake.requests.values() if r.idempotency_key == req.idempotency_key) == 1
    other_client = await stubs.requests.SubmitRequest(req, metadata=auth("t-dlh"))  # same key, other client
    assert other_client.request.request_id != request_id and not other_client.deduplicated


async def test_lifecycle_with_read_your_writes(stubs: Stubs) -> None:
    submitted = await stubs.requests.SubmitRequest(submit_request(), metadata=auth("t-dpmptsp"))
    rid = submitted.request.request_id
    assert (await get(stubs, rid, "t-dpmptsp")).version == 1  # visible at once to the caller
    steps = [
        (A.REQUEST_ACTION_ACKNOWLEDGE, {}, RS.REQUEST_STATUS_ACKNOWLEDGED),
        (A.REQUEST_ACTION_ASSIGN, {"assignee": "budi"}, RS.REQUEST_STATUS_ASSIGNED),
        (A.REQUEST_ACTION_START, {"note": "on the way"}, RS.REQUEST_STATUS_IN_PROGRESS),
        (A.REQUEST_ACTION_RESOLVE, {"note": "done"}, RS.REQUEST_STATUS_RESOLVED),
        (A.REQUEST_ACTION_REOPEN, {"note": "not quite"}, RS.REQUEST_STATUS_IN_PROGRESS),
        (A.REQUEST_ACTION_RESOLVE, {}, RS.REQUEST_STATUS_RESOLVED),
        (A.REQUEST_ACTION_CLOSE, {}, RS.REQUEST_STATUS_CLOSED),
    ]
    for version, (action, fields, status) in enumerate(steps, start=2):
        reply = await stubs.requests.TransitionRequest(
            transition(rid, action, **fields), metadata=auth("t-dpmptsp")
        )
        assert (reply.request.status, reply.request.version, reply.event.version) == (
            status,
            version,
            version,
        )
        seen = await get(stubs, rid, "t-dpmptsp")  # read-your-writes: no waiting, no polling
        assert (seen.status, seen.version) == (status, version)
    assert seen.assignee == "budi"
    listed = await stubs.requests.ListRequests(
        A.ListRequestsRequest(status=RS.REQUEST_STATUS_CLOSED), metadata=auth("t-dpmptsp")
    )
    assert rid in [r.request_id for r in listed.requests]


async def test_rejected_and_invalid_commands(stubs: Stubs) -> None:
    rid = (
        await stubs.requests.SubmitRequest(submit_request(), metadata=auth("t-dpmptsp"))
    ).request.request_id
    err = await rpc_error(
        stubs.requests.TransitionRequest(transition(rid, A.REQUEST_ACTION_START), metadata=auth("t-dpmptsp"))
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    # The reason is citizen-requests' own (its ledger answers in the fake).
    assert "INVALID_TRANSITION" in (err.details() or "") and "cannot start a request that is SUBMITTED" in (
        err.details() or ""
    )
    stale = transition(rid, A.REQUEST_ACTION_ACKNOWLEDGE, expected_version=7)
    err = await rpc_error(stubs.requests.TransitionRequest(stale, metadata=auth("t-dpmptsp")))
    assert err.code() == grpc.StatusCode.ABORTED and "version 1" in (err.details() or "")
    err = await rpc_error(
        stubs.requests.TransitionRequest(transition(rid, A.REQUEST_ACTION_REJECT), metadata=auth("t-dpmptsp"))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "note: is required" in (err.details() or "")
    err = await rpc_error(
        stubs.requests.TransitionRequest(transition("req-unknown", 1), metadata=auth("t-dpmptsp"))
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND and "req-unknown" in (err.details() or "")
    err = await rpc_error(
        stubs.requests.SubmitRequest(submit_request(category="parking"), metadata=auth("t-portal"))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "parking" in (err.details() or "")
    err = await rpc_error(
        stubs.requests.SubmitRequest(submit_request(idempotency_key="short"), metadata=auth("t-portal"))
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "idempotency_key" in (err.details() or "")
    err = await rpc_error(
        stubs.requests.GetRequest(A.GetRequestRequest(request_id="req-none"), metadata=auth("t-cc"))
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert (await get(stubs, rid, "t-dpmptsp")).version == 1  # nothing was applied


async def test_comments_and_the_audit_trail(stubs: Stubs) -> None:
    rid = (
        await stubs.requests.SubmitRequest(submit_request(category="emergency"), metadata=auth("t-portal"))
    ).request.request_id
    await stubs.requests.TransitionRequest(
        transition(rid, A.REQUEST_ACTION_ACKNOWLEDGE), metadata=auth("t-bpbd")
    )
    commented = await stubs.requests.CommentOnRequest(
        A.CommentOnRequestRequest(request_id=rid, text="Tim sudah di lokasi"), metadata=auth("t-cc")
    )
    assert commented.request.comment_count == 1 and not commented.request.HasField("reporter")
    err = await rpc_error(
        stubs.requests.CommentOnRequest(
            A.CommentOnRequestRequest(request_id=rid, text=""), metadata=auth("t-cc")
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "text" in (err.details() or "")
    types, token = [], ""
    while True:
        page = await stubs.requests.ListRequestEvents(
            A.ListRequestEventsRequest(request_id=rid, page_size=2, page_token=token), metadata=auth("t-bpbd")
        )
        types += [e.type for e in page.events]
        assert all(e.request.reporter.name == "Siti" for e in page.events)  # BPBD: its own request
        token = page.next_page_token
        if not token:
            break
    assert types == [
        RS.REQUEST_EVENT_TYPE_SUBMITTED,
        RS.REQUEST_EVENT_TYPE_ACKNOWLEDGED,
        RS.REQUEST_EVENT_TYPE_COMMENTED,
    ]
    cc = await stubs.requests.ListRequestEvents(
        A.ListRequestEventsRequest(request_id=rid), metadata=auth("t-cc")
    )
    assert len(cc.events) == 3 and not any(e.request.HasField("reporter") for e in cc.events)
    err = await rpc_error(
        stubs.requests.ListRequestEvents(
            A.ListRequestEventsRequest(request_id=rid), metadata=auth("t-dpmptsp")
        )
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_visibility_and_write_permissions_per_opd(stubs: Stubs) -> None:
    rid = (
        await stubs.requests.SubmitRequest(submit_request(category="emergency"), metadata=auth("t-portal"))
    ).request.request_id
    assert (await get(stubs, rid, "t-bpbd")).reporter.phone
    assert not (await get(stubs, rid, "t-cc")).HasField("reporter")
    assert not (await get(stubs, rid, "t-admin")).HasField("reporter")
    for token, code in [
        ("t-dpmptsp", grpc.StatusCode.PERMISSION_DENIED),
        ("t-devices", grpc.StatusCode.PERMISSION_DENIED),
        ("nope", grpc.StatusCode.UNAUTHENTICATED),
    ]:
        err = await rpc_error(
            stubs.requests.GetRequest(A.GetRequestRequest(request_id=rid), metadata=auth(token))
        )
        assert err.code() == code, token
    ack = transition(rid, A.REQUEST_ACTION_ACKNOWLEDGE)
    for token in ("t-cc", "t-dpmptsp", "t-portal"):
        err = await rpc_error(stubs.requests.TransitionRequest(ack, metadata=auth(token)))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, token
    err = await rpc_error(stubs.requests.SubmitRequest(submit_request(), metadata=auth("t-devices")))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "requests:write" in (err.details() or "")
    assert (await stubs.requests.TransitionRequest(ack, metadata=auth("t-admin"))).request.version == 2
    bpbd = await stubs.requests.ListRequests(A.ListRequestsRequest(open_only=True), metadata=auth("t-bpbd"))
    assert bpbd.requests and {r.opd_code for r in bpbd.requests} == {"BPBD"}
    dpm = await stubs.requests.ListRequests(A.ListRequestsRequest(), metadata=auth("t-dpmptsp"))
    assert rid not in [r.request_id for r in dpm.requests]
    err = await rpc_error(
        stubs.requests.ListRequests(A.ListRequestsRequest(opd_code="BPBD"), metadata=auth("t-dpmptsp"))
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "requests:read:all" in (err.details() or "")
    everything = await stubs.requests.ListRequests(
        A.ListRequestsRequest(opd_code="BPBD"), metadata=auth("t-cc")
    )
    assert rid in [r.request_id for r in everything.requests]
    assert not any(r.HasField("reporter") for r in everything.requests)


async def test_paging_requests(stubs: Stubs) -> None:
    for _ in range(5):
        await stubs.requests.SubmitRequest(submit_request(category="waste"), metadata=auth("t-dlh"))
    seen, token = [], ""
    while True:
        page = await stubs.requests.ListRequests(
            A.ListRequestsRequest(category="waste", page_size=2, page_token=token), metadata=auth("t-dlh")
        )
        assert page.total_size >= 5
        seen += [r.request_id for r in page.requests]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == page.total_size
    err = await rpc_error(
        stubs.requests.ListRequests(
            A.ListRequestsRequest(category="roads", page_size=2, page_token=token or "x"),
            metadata=auth("t-dlh"),
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_deadlines_are_honoured(stubs: Stubs) -> None:
    err = await rpc_error(
        stubs.requests.SubmitRequest(
            submit_request(category="blackhole"), metadata=auth("t-portal"), timeout=1.0
        )
    )
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # Without a deadline from the caller, the gateway's own command timeout (3 s here) applies.
    err = await rpc_error(
        stubs.requests.SubmitRequest(submit_request(category="blackhole"), metadata=auth("t-portal"))
    )
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "same idempotency key" in (err.details() or "")


async def test_request_stats(stubs: Stubs) -> None:
    reply = await stubs.requests.ListRequestStats(A.ListRequestStatsRequest(), metadata=auth("t-dpmptsp"))
    assert [(s.scope, s.key, s.open) for s in reply.stats] == [(1, "emergency", 4), (2, "BPBD", 4)]
    opd = await stubs.requests.ListRequestStats(
        A.ListRequestStatsRequest(scope=RS.STATS_SCOPE_OPD), metadata=auth("t-dpmptsp")
    )
    assert [s.key for s in opd.stats] == ["BPBD"]
    snap = (await stubs.overview.GetCitySnapshot(A.GetCitySnapshotRequest(), metadata=auth("t-cc"))).snapshot
    assert [s.key for s in snap.requests_by_opd] == ["BPBD"] and [
        s.key for s in snap.requests_by_category
    ] == ["emergency"]
    assert snap.requests_open >= 1


async def test_trace_context_continues_into_the_command(stubs: Stubs, fake: FakeRequestsService) -> None:
    trace_id = uuid.uuid4().hex
    parent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    req = submit_request()
    await stubs.requests.SubmitRequest(req, metadata=[*auth("t-portal"), ("traceparent", parent)])
    headers = next(h for c, h in fake.commands if c.submit.idempotency_key == req.idempotency_key)
    traceparent = dict(headers)["traceparent"].decode()
    assert traceparent.split("-")[1] == trace_id and traceparent != parent  # same trace, the gateway's span
