"""Edge and contract: MAC hashing, raw-MAC detection, reading → protobuf, validation, simulator."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from smartcity.codec import DecodeError
from smartcity.inventory import access_points
from smartcity.settings import PlatformSettings
from smartcity.v1 import common_pb2, wifi_pb2
from wifi_telemetry.adapters.messages import (
    SESSION_CODEC,
    TELEMETRY_CODEC,
    redacted_session,
    sample_from_proto,
    status_proto,
)
from wifi_telemetry.adapters.metrics import set_site_gauges
from wifi_telemetry.config import WifiConfig
from wifi_telemetry.core.domain import AccessPointModel
from wifi_telemetry.core.privacy import (
    ClientHasher,
    client_hash_problem,
    looks_like_mac,
    normalize_mac,
    redact_macs,
)
from wifi_telemetry.core.published import ap_view
from wifi_telemetry.edge.collector import forward
from wifi_telemetry.edge.readings import EdgeCollector, session_from_reading, telemetry_from_reading
from wifi_telemetry.sim.simulator import SiteBatches, WifiCity, scaled_access_points
from wifi_telemetry.sim.usage import demand

T0 = 1_764_300_000.0
MAC = "A4:5E:60:12:34:56"


@pytest.mark.parametrize("spelling", ["a4:5e:60:12:34:56", "A4-5E-60-12-34-56", "a45e.6012.3456",
                                      "A45E60123456", " a4:5e:60:12:34:56 "])
def test_every_usual_mac_spelling_is_recognised_and_hashes_the_same(spelling: str) -> None:
    hasher = ClientHasher("salt")
    assert looks_like_mac(spelling)
    assert normalize_mac(spelling) == "a4:5e:60:12:34:56"
    assert hasher.hash(spelling) == hmac.new(b"salt", b"a4:5e:60:12:34:56", hashlib.sha256).hexdigest()


def test_the_hash_depends_on_the_secret_salt() -> None:
    assert ClientHasher("one").hash(MAC) != ClientHasher("two").hash(MAC)
    with pytest.raises(ValueError, match="not a MAC") as caught:
        ClientHasher("one").hash("a4:5e:60:12:34")
    assert "a4:5e" not in str(caught.value)


def test_client_hash_problems_never_quote_the_value() -> None:
    good = ClientHasher("s").hash(MAC)
    assert client_hash_problem(good) is None
    for bad in (MAC, "a45e60123456", "a4-5e-60-12-34-56"):
        problem = client_hash_problem(bad)
        assert problem is not None and "raw MAC" in problem and bad not in problem
    assert "64 characters" in (client_hash_problem("abc") or "")
    assert "64 characters" in (client_hash_problem(good.upper()) or "")


def test_redact_macs_masks_macs_inside_text_but_not_hashes() -> None:
    good = ClientHasher("s").hash(MAC)
    text = f"bad value '{MAC}' and a45e60123456, hash {good}"
    assert redact_macs(text) == f"bad value '<mac>' and <mac>, hash {good}"


def reading(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "ap_id": "ap-alun-alun-01", "site_id": "alun-alun", "seq": 7, "observed_time": T0 + 0.25,
        "uptime_seconds": 3600, "cpu_percent": 23.5, "memory_percent": 61.0, "clients": 12,
        "rx_bytes": 1000, "tx_bytes": 2000, "firmware": "fw", "name": "AP 1", "latitude": -7.38,
        "longitude": 109.36,
        "radios": [{"band": "5GHz", "channel": 36, "noise_dbm": -92, "channel_utilization_ratio": 0.3,
                    "clients": 8}],
    }
    return base | overrides


def test_a_telemetry_reading_becomes_the_contract_event() -> None:
    message = telemetry_from_reading(reading())
    decoded = TELEMETRY_CODEC.decode(message.SerializeToString())
    sample = sample_from_proto(decoded)
    assert (sample.ap_id, sample.seq, sample.t) == ("ap-alun-alun-01", 7, T0 + 0.25)
    assert (sample.clients, sample.rx) == (12, 1000)
    assert (sample.lat, sample.lon, decoded.radios[0].band) == (-7.38, 109.36, "5GHz")


def test_a_session_reading_leaves_the_edge_with_the_mac_hashed() -> None:
    hasher = ClientHasher("s")
    message = session_from_reading({"ap_id": "ap-1", "site_id": "x", "kind": "connect", "client_mac": MAC,
                                    "event_time": T0, "session_id": "abc"}, hasher)
    wire = message.SerializeToString()
    assert message.client_hash == hasher.hash(MAC)
    for spelling in (MAC, MAC.lower(), MAC.replace(":", "").lower(), MAC.replace(":", "")):
        assert spelling.encode() not in wire
    assert SESSION_CODEC.decode(wire).kind == wifi_pb2.SESSION_EVENT_KIND_CONNECT


@pytest.mark.parametrize(("broken", "reason"), [
    ({"ap_id": ""}, "ap_id"), ({"site_id": " "}, "site_id"), ({"observed_time": 0}, "observed_time"),
    ({"cpu_percent": 140.0}, "cpu_percent"), ({"memory_percent": float("nan")}, "memory_percent"),
])
def test_invalid_telemetry_is_rejected_with_a_reason(broken: dict[str, object], reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        TELEMETRY_CODEC.decode(telemetry_from_reading(reading(**broken)).SerializeToString())


def test_bytes_that_are_no_event_are_rejected() -> None:
    with pytest.raises(DecodeError):
        TELEMETRY_CODEC.decode(b"\xff\xff\xff garbage")
    with pytest.raises(DecodeError, match="tombstone"):
        SESSION_CODEC.decode(None)
    with pytest.raises(DecodeError, match="kind"):
        unspecified = wifi_pb2.ClientSession(ap_id="a", site_id="b", session_id="c")
        SESSION_CODEC.decode(unspecified.SerializeToString())


def test_a_session_with_a_raw_mac_is_redacted_for_the_dlq() -> None:
    message = wifi_pb2.ClientSession(ap_id="a", site_id="b", session_id="c", client_hash=MAC,
                                     kind=wifi_pb2.SESSION_EVENT_KIND_CONNECT)
    blanked = redacted_session(message)
    assert blanked.client_hash == "<redacted>" and blanked.ap_id == "a"


def test_the_status_message_carries_health_reasons_and_availability() -> None:
    model = AccessPointModel(WifiConfig())
    sample = sample_from_proto(telemetry_from_reading(reading()))
    state = model.new_state(sample)
    model.offer(state, sample)
    status = status_proto(ap_view(model, state, now=T0 + 1000), now=T0 + 1000)
    assert status.health == common_pb2.HEALTH_STATE_CRITICAL and status.reasons[0].check == "heartbeat"
    assert status.last_seq == 7 and status.clients_now == 0 and status.name == "AP 1"
    # Availability is measured up to the last heartbeat: the live silence is in the health only.
    assert status.availability.last_hour_ratio == 1.0
    later = status_proto(ap_view(model, state, now=T0 + 5000), now=T0 + 5000)
    assert later.availability == status.availability and later.health == status.health


def test_usage_is_busier_on_alun_alun_evenings_and_weekends() -> None:
    def at(day: int, hour: int) -> float:  # November 2025: the 24th is a Monday
        return datetime(2025, 11, day, hour - 7, 0, tzinfo=UTC).timestamp()
    assert demand("civic", at(25, 20)) > 2 * demand("civic", at(25, 9))
    assert demand("civic", at(29, 20)) > demand("civic", at(25, 20))       # Saturday
    assert demand("public_service", at(25, 10)) > 5 * demand("public_service", at(29, 10))


def test_simulated_city_reports_sessions_and_obeys_faults() -> None:
    aps = [ap for ap in access_points() if ap.site_id == "pendopo"]
    city = WifiCity(aps, seed=3, start=T0, load=1.0)
    start = datetime(2025, 11, 29, 13, 0, tzinfo=UTC).timestamp()  # Saturday 20:00 WIB: busy
    telemetry, sessions = city.step(start)
    assert len(telemetry) == 2 and sessions and all(s["kind"] == "connect" for s in sessions)
    assert telemetry[0]["clients"] > 0
    city.apply_fault({"fault": "offline", "target": "ap-pendopo-01", "duration_s": 30}, now=start)
    city.apply_fault({"fault": "cpu_high", "target": "pendopo"}, now=start)
    telemetry, _ = city.step(start + 10)
    assert [t["ap_id"] for t in telemetry] == ["ap-pendopo-02"] and telemetry[0]["cpu_percent"] > 95
    assert {f["fault"] for f in city.active_faults(start + 10)} == {"offline", "cpu_high"}
    before = next(t for t in city.step(start + 40)[0] if t["ap_id"] == "ap-pendopo-01")
    city.apply_fault({"fault": "reboot", "target": "ap-pendopo-01"}, now=start + 41)
    after = next(t for t in city.step(start + 50)[0] if t["ap_id"] == "ap-pendopo-01")
    assert after["seq"] == before["seq"] + 1
    assert after["uptime_seconds"] < before["uptime_seconds"] and after["rx_bytes"] < before["rx_bytes"]
    city.apply_fault({"fault": "clear", "target": "all"}, now=start + 50)
    assert city.active_faults(start + 50) == []
    with pytest.raises(ValueError, match="unknown fault"):
        city.apply_fault({"fault": "meteor", "target": "all"})
    with pytest.raises(ValueError, match="unknown target"):
        city.apply_fault({"fault": "offline", "target": "atlantis"})


def test_the_kept_site_batches_encode_what_the_readings_do_through_faults() -> None:
    # step_batches (batches kept and changed in place) against step (every reading a dict, built
    # into messages by the edge code): two cities of one seed draw the same numbers.
    aps = scaled_access_points(access_points(), 60)
    general, kept = WifiCity(aps, seed=5, start=T0), WifiCity(aps, seed=5, start=T0)
    batches = SiteBatches()
    faults: dict[int, dict[str, Any]] = {
        2: {"fault": "offline", "target": aps[0].ap_id, "duration_s": 3},  # a site's batch shrinks
        3: {"fault": "cpu_high", "target": aps[1].site_id},
        4: {"fault": "reboot", "target": aps[2].ap_id, "duration_s": 2},
        8: {"fault": "clear", "target": "all"}}
    for tick in range(12):
        now = T0 + 10 * tick
        if tick in faults:
            general.apply_fault(faults[tick], now=now)
            kept.apply_fault(faults[tick], now=now)
        telemetry, sessions = general.step(now)
        by_site: dict[str, list[wifi_pb2.ApTelemetry]] = {}
        for reading in telemetry:
            by_site.setdefault(reading["site_id"], []).append(telemetry_from_reading(reading))
        expected = [wifi_pb2.ApTelemetryBatch(site_id=site, readings=messages)
                    .SerializeToString(deterministic=True) for site, messages in by_site.items()]
        got, kept_sessions = kept.step_batches(now, batches)
        assert [batch.SerializeToString(deterministic=True) for batch in got] == expected, tick
        assert kept_sessions == sessions
    assert sum(len(b.readings) for b in got) == 60


def test_a_client_s_bytes_count_the_time_its_ap_was_online_only() -> None:
    aps = [ap for ap in access_points() if ap.site_id == "pendopo"][:1]
    city = WifiCity(aps, seed=9, start=T0, load=1.0)
    start = datetime(2025, 11, 29, 13, 0, tzinfo=UTC).timestamp()  # busy: clients connect
    city.step(start)
    ap = city.aps[aps[0].ap_id]
    client = next(iter(ap.clients.values()))
    rx_before = ap.rx
    city.step(start + 10)
    city.apply_fault({"fault": "offline", "target": ap.info.ap_id, "duration_s": 50}, now=start + 10)
    for tick in range(2, 8):  # a step every 10 s: offline from +10 s to +60 s, online again after
        city.step(start + 10 * tick)
    assert ap.online_s == pytest.approx(30)  # 10 + 10 + 10 online, 50 offline
    assert client.rx(ap.online_s) == int(client.up_bps * 30 / 8)
    assert client.tx(ap.online_s) == int(client.down_bps * 30 / 8)
    assert ap.rx - rx_before >= client.rx(ap.online_s) - client.rx(10)  # the AP counts its clients' bytes


class FakeProducer:
    """Stands in for the aiokafka producer: records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        self.sent.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_the_collector_cli_sends_good_lines_and_reports_bad_ones_without_the_mac(
        caplog: pytest.LogCaptureFixture) -> None:
    producer = FakeProducer()
    collector = EdgeCollector(PlatformSettings("wifi-collector", topic_prefix="p."), ClientHasher("s"),
                              producer=producer)  # type: ignore[arg-type]
    joined = {"type": "session", "ap_id": "ap-1", "site_id": "x", "kind": "connect", "client_mac": MAC}
    lines = [
        json.dumps({"type": "telemetry", **reading()}),
        json.dumps(joined | {"event_time": T0, "session_id": "s1"}),
        json.dumps(joined),
        json.dumps({"type": "telemetry", **reading(seq=MAC)}),
        "{not json",
        "",
    ]
    with caplog.at_level(logging.WARNING):
        sent, rejected = await forward(lines, collector)
    assert (sent, rejected) == (2, 3)
    assert [t for t, _, _ in producer.sent] == ["p.wifi.ap-telemetry.v1", "p.wifi.client-sessions.v1"]
    assert [key for _, key, _ in producer.sent] == [b"ap-alun-alun-01", b"ap-1"]
    assert MAC.encode() not in producer.sent[1][2]
    assert "missing field 'event_time'" in caplog.text and "line 5" in caplog.text
    assert MAC not in caplog.text and MAC.lower() not in caplog.text


def test_site_gauges_count_every_state_per_site() -> None:
    model = AccessPointModel(WifiConfig())
    views = []
    for ap_id, clients, t in (("ap-a", 3, T0), ("ap-b", 4, T0 - 500)):
        sample = sample_from_proto(telemetry_from_reading(reading(ap_id=ap_id, clients=clients,
                                                                  observed_time=t)))
        state = model.new_state(sample)
        model.offer(state, sample)
        views.append(ap_view(model, state, now=T0 + 1))
    set_site_gauges(views)
    value = REGISTRY.get_sample_value
    assert value("smartcity_wifi_access_points", {"site": "alun-alun", "health": "ok"}) == 1
    assert value("smartcity_wifi_access_points", {"site": "alun-alun", "health": "critical"}) == 1
    assert value("smartcity_wifi_access_points", {"site": "alun-alun", "health": "problem"}) == 0
    assert value("smartcity_wifi_clients_online", {"site": "alun-alun"}) == 3
