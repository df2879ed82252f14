"""citizen-requests against the real broker, run from its entry point (`python -m citizen_requests`).

Expected outcomes are computed from the same commands with the domain code (`Ledger`,
`StatsBook`) and compared with what the worker wrote to Kafka.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from google.protobuf.message import Message

from citizen_requests.config import load_config
from citizen_requests.core.ledger import Ledger
from citizen_requests.core.stats import StatsBook, day_of
from citizen_requests.sim.command_builders import CITIZEN, STAFF, action_command, actor, submit_command
from smartcity.codec import from_timestamp
from smartcity.ids import request_id_for
from smartcity.personal_data.envelope import new_data_key, seal_contact
from smartcity.testing import ServiceProcess, consume, consume_all, free_port
from smartcity.v1 import requests_pb2 as pb

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

COMMANDS = "requests.commands.v1"
EVENTS = "requests.events.v1"
STATE = "requests.state.v1"
STATS = "requests.stats.v1"
CENTER = (-7.38830, 109.36390)  # Alun-Alun
OPD_OF = {"permits": "DPMPTSP", "roads": "PUPR", "waste": "DLH", "health_info": "DINKES",
          "emergency": "BPBD", "wifi_cctv": "DINKOMINFO"}
StartService = Callable[..., ServiceProcess]


# ---- helpers

def start_worker(run_service: StartService, prefix: str, **env: str) -> ServiceProcess:
    port = free_port()
    worker = run_service("citizen_requests", prefix, METRICS_PORT=str(port),
                         REQUESTS_BROKER_SESSION_TIMEOUT_S="6", **env)
    worker.metrics_port = port  # type: ignore[attr-defined]
    return worker


def _probe(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


async def wait_ready(worker: ServiceProcess, timeout_s: float = 45.0) -> None:
    url = f"http://127.0.0.1:{worker.metrics_port}/readyz"  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert worker.running, worker.log_tail()
        if await asyncio.to_thread(_probe, url):
            return
        await asyncio.sleep(0.3)
    pytest.fail("worker not ready:\n" + worker.log_tail())


async def send(producer: AIOKafkaProducer, prefix: str, *commands: pb.RequestCommand) -> None:
    for command in commands:
        await producer.send_and_wait(prefix + COMMANDS, key=command.request_id.encode(),
                                     value=command.SerializeToString())


def decode_all(records: Iterable[Any], message_type: type[Message]) -> list[Any]:
    return [message_type.FromString(r.value) for r in records]


def latest_by_key(records: Iterable[Any], message_type: type[Message]) -> dict[str, Any]:
    """What a compacted topic settles on: the last value of each key (one key, one partition)."""
    return {r.key.decode(): message_type.FromString(r.value) for r in records}


async def read_until(bootstrap: str, topic: str, message_type: type[Message],
                     done: Callable[[list[Any]], bool], timeout_s: float = 45.0) -> list[Any]:
    records = await consume(bootstrap, topic, timeout_s=timeout_s,
                            until=lambda recs: done(decode_all(recs, message_type)))
    return decode_all(records, message_type)


def without_time(stats: pb.RequestStats) -> pb.RequestStats:
    copy = pb.RequestStats()
    copy.CopyFrom(stats)
    copy.ClearField("updated_time")
    return copy


def expected_stats(requests: Iterable[pb.ServiceRequest]) -> dict[str, pb.RequestStats]:
    book = StatsBook()
    book.update_all(requests)
    now = time.time()
    prefixes = {pb.STATS_SCOPE_CATEGORY: "category", pb.STATS_SCOPE_OPD: "opd"}
    return {f"{prefixes[s[0]]}:{s[1]}": without_time(book.stats(s, now)) for s in book.scopes()}


def staff(opd: str) -> pb.Actor:
    return actor(STAFF, f"petugas-{opd.lower()}", opd)


def report(key: str, category: str, at: float, index: int, **kw: Any) -> pb.RequestCommand:
    # ~220 m apart, so only the duplicates a test means to make are flagged.
    return submit_command(client_id="test-citizens", idempotency_key=key, category=category,
                          description=f"Laporan {key}", issued_at=at, latitude=CENTER[0] + 0.002 * index,
                          longitude=CENTER[1], encrypted_reporter=sealed_contact(key, at), **kw)


def sealed_contact(request_key: str, at: float) -> pb.EncryptedContact:
    """An envelope as the gateway makes it (its key is thrown away: the service never opens it).

    One reporter per request key: a retry seals the same contact anew (same subject, new nonce)."""
    request_id = request_id_for("test-citizens", request_key)
    sealed: pb.EncryptedContact = seal_contact(pb.Reporter(name="Warga Uji", phone="0812000000"),
                                               f"subj-{request_key}", "dk-1", new_data_key(), request_id)
    return sealed


def lifecycle(sub: pb.RequestCommand, at: float, steps: Sequence[str]) -> list[pb.RequestCommand]:
    opd = OPD_OF[sub.submit.category]
    payloads: dict[str, dict[str, Any]] = {
        "acknowledge": {"note": "diterima"}, "assign": {"assignee": "tim-lapangan"}, "start": {},
        "resolve": {"note": "selesai"}, "close": {}, "reject": {"reason": "bukan kewenangan"},
        "reopen": {"reason": "belum tuntas"}, "comment": {"text": "dalam proses"}}
    return [action_command(sub.request_id, step, issued_at=at + 10 * (i + 1), by=staff(opd),
                           client_id=f"sim-{opd.lower()}", **payloads[step])
            for i, step in enumerate(steps)]


# ---- tests

async def test_command_stream_gives_the_expected_events_states_and_stats(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: StartService) -> None:
    now = time.time()
    plans = [
        ("permits", ["acknowledge", "assign", "start", "resolve", "close"]),
        ("roads", ["acknowledge", "assign", "start"]),
        ("waste", ["acknowledge", "reject"]),
        ("health_info", ["comment", "acknowledge", "assign", "start", "resolve", "reopen"]),
        ("emergency", ["acknowledge", "assign"]),
        ("roads", []),
    ]
    commands: list[pb.RequestCommand] = []
    for i, (category, steps) in enumerate(plans):
        sub = report(f"r{i}", category, now + i, i)
        commands += [sub, *lifecycle(sub, now + i, steps)]
    # Reported ten minutes ago, reaching us now: its 5-minute acknowledgement SLA is already breached.
    late = report("late", "emergency", now, 20, requested_at=now - 600, priority=pb.PRIORITY_EMERGENCY)
    commands.append(late)
    worker = start_worker(run_service, topic_prefix)
    await send(producer, topic_prefix, *commands)
    ledger = Ledger(load_config())
    expected_events = [e for c in commands for e in ledger.command(c).events]
    expected = ledger.requests()

    # A second flood report ~50 m from the first emergency, once the first is known: a duplicate.
    await read_until(kafka_bootstrap, topic_prefix + STATE, pb.ServiceRequest,
                     lambda states: any(s.category == "emergency" and s.version >= 3 for s in states))
    first_flood = next(r for r in expected.values() if r.category == "emergency" and r.version == 3)
    dup = submit_command(client_id="test-citizens", idempotency_key="dup", category="emergency",
                         description="Banjir lagi", issued_at=now + 30,
                         latitude=first_flood.location.latitude + 0.0004, longitude=CENTER[1])
    await send(producer, topic_prefix, dup)
    expected_events += ledger.command(dup).events
    expected = ledger.requests()
    assert list(expected[dup.request_id].possible_duplicate_of) == [first_flood.request_id]

    events = await read_until(kafka_bootstrap, topic_prefix + EVENTS, pb.RequestEvent,
                              lambda evs: len(evs) >= len(expected_events))
    assert [(e.event_id, e.type, e.version) for e in events if e.request_id == late.request_id] == \
        [(e.event_id, e.type, e.version) for e in expected_events if e.request_id == late.request_id]
    for request_id in expected:
        got = [(e.type, e.version, e.correlation_id) for e in events if e.request_id == request_id]
        want = [(e.type, e.version, e.correlation_id) for e in expected_events if e.request_id == request_id]
        assert got == want, request_id
    states = latest_by_key(await consume_all(kafka_bootstrap, topic_prefix + STATE), pb.ServiceRequest)
    assert states == expected
    assert states[late.request_id].sla.acknowledge_breached
    # The contact envelopes ride through untouched: the service never opens them.
    sealed = {c.request_id: c.submit.encrypted_reporter for c in commands if c.HasField("submit")}
    assert len(sealed) == len(plans) + 1 and all(states[r].encrypted_reporter == e for r, e in sealed.items())
    assert all(e.request.encrypted_reporter == sealed[e.request_id] for e in events if e.request_id in sealed)
    assert not any(s.HasField("reporter") for s in states.values())
    want_stats = expected_stats(expected.values())
    # The breach counts for the day its deadline fell on: yesterday, in the first minutes after midnight.
    offset_h = StatsBook().utc_offset_h  # the book expected_stats counts with
    breached_today = day_of(now - 300, offset_h) == day_of(now, offset_h)
    assert want_stats["category:roads"].open == 2
    assert want_stats["opd:BPBD"].sla_breaches_today == (1 if breached_today else 0)
    stats = await read_until(kafka_bootstrap, topic_prefix + STATS, pb.RequestStats,
                             lambda s: {f"{'category' if x.scope == 1 else 'opd'}:{x.key}": without_time(x)
                                        for x in s} == want_stats)
    assert {f"{'category' if x.scope == 1 else 'opd'}:{x.key}": without_time(x) for x in stats} == want_stats
    worker.stop()


async def test_an_invalid_transition_is_rejected_with_the_correlation_id_and_changes_nothing(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: StartService) -> None:
    now = time.time()
    sub = report("x1", "roads", now, 0)
    resolve_too_early = action_command(sub.request_id, "resolve", issued_at=now + 5, by=staff("PUPR"),
                                       client_id="sim-pupr", correlation_id="corr-too-early", note="?")
    comment = action_command(sub.request_id, "comment", issued_at=now + 6, by=staff("PUPR"),
                             client_id="sim-pupr", text="dicek besok")
    start_worker(run_service, topic_prefix)
    await send(producer, topic_prefix, sub, resolve_too_early, comment)
    events = await read_until(kafka_bootstrap, topic_prefix + EVENTS, pb.RequestEvent, lambda e: len(e) >= 3)
    rejection = events[1]
    assert rejection.type == pb.REQUEST_EVENT_TYPE_COMMAND_REJECTED
    assert rejection.correlation_id == "corr-too-early"
    assert rejection.command_id == resolve_too_early.command_id
    assert rejection.rejection_code == pb.REJECTION_CODE_INVALID_TRANSITION
    assert "SUBMITTED" in rejection.rejection_reason
    assert rejection.version == 1 and rejection.request.status == pb.REQUEST_STATUS_SUBMITTED
    assert (events[2].type, events[2].version) == (pb.REQUEST_EVENT_TYPE_COMMENTED, 2)  # nothing in between
    states = decode_all(await consume_all(kafka_bootstrap, topic_prefix + STATE), pb.ServiceRequest)
    # The state topic holds the latest state: once per batch of commands, so version 1 may be
    # superseded within the batch. No state for the rejection, none out of order.
    versions = [(s.version, s.status) for s in states]
    assert versions in ([(1, pb.REQUEST_STATUS_SUBMITTED), (2, pb.REQUEST_STATUS_SUBMITTED)],
                        [(2, pb.REQUEST_STATUS_SUBMITTED)])


async def test_a_duplicate_submit_yields_one_request(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: StartService) -> None:
    now = time.time()
    original = report("same-key", "waste", now, 0)
    retries = [report("same-key", "waste", now + i, 0) for i in (1, 2)]  # new command ids, same key
    assert {r.request_id for r in retries} == {original.request_id}
    start_worker(run_service, topic_prefix)
    # The original, two retries by the client, and one redelivery of the very same message.
    await send(producer, topic_prefix, original, *retries, original)
    events = await read_until(kafka_bootstrap, topic_prefix + EVENTS, pb.RequestEvent, lambda e: len(e) >= 4)
    assert [e.type for e in events] == [pb.REQUEST_EVENT_TYPE_SUBMITTED,
                                        pb.REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED,
                                        pb.REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED,
                                        pb.REQUEST_EVENT_TYPE_SUBMITTED]
    assert events[3].event_id == events[0].event_id  # the redelivery re-emits the same outcome
    assert all(e.request.request_id == original.request_id and e.request.version == 1 for e in events)
    assert events[1].correlation_id == retries[0].correlation_id
    states = decode_all(await consume_all(kafka_bootstrap, topic_prefix + STATE), pb.ServiceRequest)
    assert {(s.request_id, s.version) for s in states} == {(original.request_id, 1)}
    stats = await read_until(kafka_bootstrap, topic_prefix + STATS, pb.RequestStats,
                             lambda s: any(x.key == "DLH" for x in s))
    assert [(x.total, x.open) for x in stats if x.key == "DLH"][-1] == (1, 1)


async def test_state_and_stats_after_a_sigkill_mid_stream_equal_the_direct_computation(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: StartService) -> None:
    now = time.time()
    categories = ["permits", "roads", "waste", "health_info", "wifi_cctv", "emergency"]
    steps = [["acknowledge", "assign", "start", "resolve", "close"],
             ["acknowledge", "comment", "assign"],
             ["start", "acknowledge", "reject"],
             ["acknowledge", "assign", "start", "resolve", "reopen", "resolve"]]
    per_request: list[list[pb.RequestCommand]] = []
    for i in range(36):
        sub = report(f"k{i}", categories[i % len(categories)], now + i, i)
        per_request.append([sub, *lifecycle(sub, now + i, steps[i % len(steps)])])
        if i % 9 == 0:
            per_request[-1].insert(2, report(f"k{i}", sub.submit.category, now + i + 1, i))  # a retry
    late = report("late", "emergency", now, 40, requested_at=now - 3600)
    per_request.append([late, *lifecycle(late, now, ["acknowledge", "assign"])])
    # Interleave the requests like a busy hour: round-robin over their command lists.
    commands = [cmds[j] for j in range(max(map(len, per_request))) for cmds in per_request if j < len(cmds)]
    ledger = Ledger(load_config())
    expected_events = [e for c in commands for e in ledger.command(c).events]
    expected = ledger.requests()

    first = start_worker(run_service, topic_prefix)
    await wait_ready(first)

    async def feed() -> None:
        for command in commands:
            await send(producer, topic_prefix, command)
            await asyncio.sleep(0.01)

    feeding = asyncio.create_task(feed())
    await read_until(kafka_bootstrap, topic_prefix + EVENTS, pb.RequestEvent,
                     lambda evs: len(evs) >= len(expected_events) // 4)
    first.kill()  # SIGKILL: nothing flushed, nothing committed on the way out
    await feeding
    second = start_worker(run_service, topic_prefix)

    def settled(states: list[pb.ServiceRequest]) -> bool:
        versions = {s.request_id: s.version for s in states}
        return all(versions.get(rid) == req.version for rid, req in expected.items())

    await read_until(kafka_bootstrap, topic_prefix + STATE, pb.ServiceRequest, settled, timeout_s=60)
    states = latest_by_key(await consume_all(kafka_bootstrap, topic_prefix + STATE), pb.ServiceRequest)
    assert states == expected
    events = decode_all(await consume_all(kafka_bootstrap, topic_prefix + EVENTS), pb.RequestEvent)
    print(f"{len(events)} events written for {len(expected_events)} outcomes "
          f"({len(events) - len(expected_events)} re-emitted after the crash)")
    outcome_of = {e.event_id: (e.type, e.version, e.request_id) for e in expected_events}
    assert {e.event_id for e in events} == set(outcome_of)  # nothing lost, nothing new
    # None applied twice: a re-emitted event id always carries its original type and version.
    assert all(outcome_of[e.event_id] == (e.type, e.version, e.request_id) for e in events)
    want_stats = expected_stats(expected.values())
    stats = await read_until(kafka_bootstrap, topic_prefix + STATS, pb.RequestStats,
                             lambda s: {f"{'category' if x.scope == 1 else 'opd'}:{x.key}": without_time(x)
                                        for x in s} == want_stats, timeout_s=30)
    got = {f"{'category' if x.scope == 1 else 'opd'}:{x.key}": without_time(x) for x in stats}
    assert got == want_stats, second.log_tail()


async def test_two_workers_share_the_requests_and_the_stats_still_add_up(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: StartService) -> None:
    """Requests spread over both workers' partitions; one of them owns the statistics."""
    now = time.time()
    categories = ["permits", "roads", "waste", "health_info", "wifi_cctv", "emergency"]
    steps = [["acknowledge", "assign", "start", "resolve"], ["acknowledge"], ["reject"], []]
    commands: list[pb.RequestCommand] = []
    for i in range(24):
        sub = report(f"w{i}", categories[i % len(categories)], now + i, i)
        commands += [sub, *lifecycle(sub, now + i, steps[i % len(steps)])]
    ledger = Ledger(load_config())
    for command in commands:
        ledger.command(command)
    expected = ledger.requests()
    workers = [start_worker(run_service, topic_prefix) for _ in range(2)]
    for worker in workers:
        await wait_ready(worker)
    await send(producer, topic_prefix, *commands)

    def settled(states: list[pb.ServiceRequest]) -> bool:
        versions = {s.request_id: s.version for s in states}
        return all(versions.get(rid) == req.version for rid, req in expected.items())

    await read_until(kafka_bootstrap, topic_prefix + STATE, pb.ServiceRequest, settled)
    states = latest_by_key(await consume_all(kafka_bootstrap, topic_prefix + STATE), pb.ServiceRequest)
    assert states == expected
    want_stats = expected_stats(expected.values())
    stats = await read_until(kafka_bootstrap, topic_prefix + STATS, pb.RequestStats,
                             lambda s: {f"{'category' if x.scope == 1 else 'opd'}:{x.key}": without_time(x)
                                        for x in s} == want_stats)
    got = {f"{'category' if x.scope == 1 else 'opd'}:{x.key}": without_time(x) for x in stats}
    assert got == want_stats, "\n".join(w.log_tail(10) for w in workers)
    assert all(w.running for w in workers)


async def test_malformed_commands_go_to_the_dlq_and_good_ones_still_flow(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: StartService) -> None:
    now = time.time()
    good = report("ok", "roads", now, 0)
    no_time = report("nt", "roads", now, 1)
    no_time.ClearField("issued_time")
    wrong_key = report("wk", "roads", now, 2)
    start_worker(run_service, topic_prefix)
    topic = topic_prefix + COMMANDS
    await producer.send_and_wait(topic, key=b"req-garbage", value=b"\x0a\xff\xff\xff not protobuf")
    await producer.send_and_wait(topic, key=no_time.request_id.encode(), value=no_time.SerializeToString())
    await producer.send_and_wait(topic, key=b"req-elsewhere", value=wrong_key.SerializeToString())
    await send(producer, topic_prefix, good)
    ack = action_command(good.request_id, "acknowledge", issued_at=now + 1, by=staff("PUPR"), client_id="c")
    await send(producer, topic_prefix, ack)
    letters = await consume(kafka_bootstrap, topic + ".dlq", until=lambda r: len(r) >= 3, timeout_s=45)
    reasons = sorted(dict(r.headers)["dlq.error"].decode() for r in letters)
    assert len(reasons) == 3
    assert any("not a smartcity.v1.RequestCommand" in r for r in reasons)
    assert any("missing required field(s): issued_time" in r for r in reasons)
    assert any("is not the command's request_id" in r for r in reasons)
    assert all(dict(r.headers)["dlq.source.topic"] == topic.encode() for r in letters)
    assert {r.value for r in letters} >= {no_time.SerializeToString(), wrong_key.SerializeToString()}
    states = await read_until(kafka_bootstrap, topic_prefix + STATE, pb.ServiceRequest,
                              lambda s: any(x.version == 2 for x in s))
    # Only the good request; its submitted state may be superseded in the same batch.
    assert [(s.request_id, s.status) for s in states] in (
        [(good.request_id, pb.REQUEST_STATUS_SUBMITTED), (good.request_id, pb.REQUEST_STATUS_ACKNOWLEDGED)],
        [(good.request_id, pb.REQUEST_STATUS_ACKNOWLEDGED)])


async def test_the_timer_flags_an_sla_breach_once_and_the_stats_show_it(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: StartService) -> None:
    now = time.time()
    flood = report("flood", "emergency", now, 0)
    start_worker(run_service, topic_prefix, REQUESTS_SLA_EMERGENCY_ACKNOWLEDGE_S="2",
                 REQUESTS_SLA_ALLOWED_LATENESS_S="0.5", REQUESTS_SLA_CHECK_INTERVAL_S="0.5")
    await send(producer, topic_prefix, flood)
    events = await read_until(kafka_bootstrap, topic_prefix + EVENTS, pb.RequestEvent,
                              lambda e: any(x.type == pb.REQUEST_EVENT_TYPE_SLA_BREACHED for x in e))
    breach = next(e for e in events if e.type == pb.REQUEST_EVENT_TYPE_SLA_BREACHED)
    assert breach.sla_breach.kind == pb.SLA_KIND_ACKNOWLEDGE and breach.version == 2
    assert from_timestamp(breach.sla_breach.due_time) == pytest.approx(now + 2)
    assert breach.actor.kind == pb.ACTOR_KIND_SYSTEM
    stats = await read_until(kafka_bootstrap, topic_prefix + STATS, pb.RequestStats,
                             lambda s: any(x.key == "BPBD" and x.overdue == 1 for x in s))
    assert [x for x in stats if x.key == "BPBD"][-1].sla_breaches_today == 1
    ack = action_command(flood.request_id, "acknowledge", issued_at=time.time(), by=staff("BPBD"),
                         client_id="c")
    await send(producer, topic_prefix, ack)
    await read_until(kafka_bootstrap, topic_prefix + STATS, pb.RequestStats,
                     lambda s: [x.overdue for x in s if x.key == "BPBD"][-1:] == [0])
    await asyncio.sleep(2)  # several more timer rounds: the breach must not be flagged again
    events = decode_all(await consume_all(kafka_bootstrap, topic_prefix + EVENTS), pb.RequestEvent)
    assert [e.type for e in events] == [pb.REQUEST_EVENT_TYPE_SUBMITTED, pb.REQUEST_EVENT_TYPE_SLA_BREACHED,
                                        pb.REQUEST_EVENT_TYPE_ACKNOWLEDGED]
    assert events[0].actor.kind == CITIZEN


async def test_a_request_that_leaves_the_stats_window_is_tombstoned_and_a_reopen_brings_it_back(
        kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer,
        run_service: StartService) -> None:
    """Resolved 100 days ago, beyond the 90-day window: the stats owner evicts it and writes a
    tombstone on the summaries topic (and the table's changelog); a reopen written after the
    tombstone is the key's last record, so compaction keeps it, and the stats count it again."""
    summaries = f"{topic_prefix}citizen-requests-summaries"
    now = time.time()
    old = now - 100 * 86400
    gone = report("gone", "roads", old, 0)
    worker = start_worker(run_service, topic_prefix, REQUESTS_STATS_WINDOW_DAYS="90")
    steps = ["acknowledge", "assign", "start", "resolve"]
    key = gone.request_id.encode()
    # The submit first, on its own: the book takes the open request in, so the finished one
    # that follows leaves by the flush timer's eviction. (Sent in one batch, the request is
    # already finished when the book first sees it, and never enters the book at all.)
    await send(producer, topic_prefix, gone)
    await consume(kafka_bootstrap, summaries, until=lambda rs: any(r.key == key for r in rs), timeout_s=45)
    await send(producer, topic_prefix, *lifecycle(gone, old, steps))

    def tombstoned(records: list[Any]) -> bool:
        return any(r.key == key and r.value is None for r in records)

    records = await consume(kafka_bootstrap, summaries, until=tombstoned, timeout_s=45)
    assert tombstoned(records), worker.log_tail()
    last = [r for r in records if r.key == key][-2]
    assert pb.ServiceRequest.FromString(last.value).status == pb.REQUEST_STATUS_RESOLVED
    changelog = await consume(kafka_bootstrap, f"{topic_prefix}citizen-requests-summaries-changelog",
                              until=tombstoned, timeout_s=30)
    assert tombstoned(changelog), "the summary table still holds the evicted request\n" + worker.log_tail()

    # Only the fresh request counts now (submitted today, open); the old one is out of total.
    fresh = report("fresh", "roads", time.time(), 1)
    await send(producer, topic_prefix, fresh)

    def pupr(want: tuple[int, ...]) -> Callable[[list[pb.RequestStats]], bool]:
        return lambda s: [(x.total, x.open, x.submitted_today) for x in s if x.key == "PUPR"][-1:] == [want]

    stats = await read_until(kafka_bootstrap, topic_prefix + STATS, pb.RequestStats, pupr((1, 1, 1)))
    assert pupr((1, 1, 1))(stats), worker.log_tail()

    reopen = action_command(gone.request_id, "reopen", issued_at=time.time(), by=staff("PUPR"),
                            client_id="sim-pupr", reason="jalan berlubang lagi")
    await send(producer, topic_prefix, reopen)

    def reopened(records: list[Any]) -> bool:
        mine = [r for r in records if r.key == key]
        return bool(mine) and mine[-1].value is not None and \
            pb.ServiceRequest.FromString(mine[-1].value).status == pb.REQUEST_STATUS_IN_PROGRESS

    records = await consume(kafka_bootstrap, summaries, until=reopened, timeout_s=45)
    assert reopened(records), worker.log_tail()
    mine = [r for r in records if r.key == key]
    assert [r.value is None for r in mine].index(True) < len(mine) - 1  # written after the tombstone
    stats = await read_until(kafka_bootstrap, topic_prefix + STATS, pb.RequestStats, pupr((2, 2, 1)))
    assert pupr((2, 2, 1))(stats), worker.log_tail()
    assert worker.running
    log_text = worker.log_path.read_text(errors="replace")
    assert "undecodable" not in log_text and "Traceback" not in log_text, worker.log_tail()
    worker.stop()
