"""RADIUS accounting packets: parsing, authenticators, accounting fields (no sockets, no Kafka)."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest

from smartcity.codec import from_timestamp
from smartcity.settings import SettingsError
from smartcity.v1 import wifi_pb2
from wifi_telemetry.core.privacy import ClientHasher
from wifi_telemetry.edge import radius_protocol as rp
from wifi_telemetry.edge.radius import NasTable, TtlCache, session_event

SECRET = b"s3cret-nas"
MAC = "A4-5E-60-12-34-56"


def attrs(status: int = rp.START, **extra: int) -> list[tuple[int, bytes]]:
    out = [(rp.ACCT_STATUS_TYPE, struct.pack("!I", status)), (rp.ACCT_SESSION_ID, b"sess-1"),
           (rp.CALLING_STATION_ID, MAC.encode()), (rp.CALLED_STATION_ID, b"AA-BB-CC-00-00-01:@wifi.pbg"),
           (rp.NAS_IDENTIFIER, b"mikrotik-alun-alun")]
    out += [(kind, struct.pack("!I", value)) for kind, value in
            ((getattr(rp, name.upper()), value) for name, value in extra.items())]
    return out


def test_a_signed_request_verifies_and_a_wrong_secret_does_not() -> None:
    packet = rp.parse_packet(rp.sign_accounting_request(7, attrs(), SECRET))
    rp.verify_accounting_request(packet, SECRET)
    with pytest.raises(rp.RadiusError) as wrong:
        rp.verify_accounting_request(packet, b"another")
    assert wrong.value.reason == "bad_authenticator"


def test_the_authenticator_is_md5_over_the_packet_with_zeros_and_the_secret() -> None:
    raw = rp.sign_accounting_request(9, attrs(), SECRET)
    assert raw[4:20] == hashlib.md5(raw[:4] + bytes(16) + raw[20:] + SECRET).digest()


def test_the_response_is_code_5_with_the_rfc_2866_authenticator() -> None:
    request = rp.parse_packet(rp.sign_accounting_request(42, attrs(), SECRET))
    response = rp.accounting_response(request, SECRET)
    assert response[0] == 5 and response[1] == 42 and struct.unpack("!H", response[2:4])[0] == 20
    assert response[4:] == hashlib.md5(response[:4] + request.authenticator + SECRET).digest()


@pytest.mark.parametrize("garbage, reason", [
    (b"", "too_short"), (b"\x04\x01\x00", "too_short"), (bytes(5000), "too_long"),
    (b"\x04\x01\x00\x10" + bytes(16), "bad_length"),
    (b"\x04\x01\x00\x17" + bytes(16) + b"\x2c\x09x", "bad_attribute"),
    (b"\x04\x01\x00\x16" + bytes(16) + b"\x2c\x01", "bad_attribute"),
])
def test_garbage_is_refused_with_a_reason(garbage: bytes, reason: str) -> None:
    with pytest.raises(rp.RadiusError) as refused:
        rp.parse_packet(garbage)
    assert refused.value.reason == reason


def test_an_access_request_is_not_accounting() -> None:
    raw = bytearray(rp.sign_accounting_request(1, attrs(), SECRET))
    raw[0] = 1
    with pytest.raises(rp.RadiusError) as refused:
        rp.verify_accounting_request(rp.parse_packet(bytes(raw)), SECRET)
    assert refused.value.reason == "not_accounting"


def test_octets_and_gigawords_make_64_bit_totals() -> None:
    raw = rp.sign_accounting_request(3, attrs(rp.STOP, acct_input_octets=5, acct_input_gigawords=2,
                                              acct_output_octets=7, acct_session_time=300), SECRET)
    record = rp.accounting_record(rp.parse_packet(raw))
    assert record.status_name == "stop"
    assert record.input_bytes == 2 * 2**32 + 5
    assert record.output_bytes == 7
    assert record.session_time_s == 300


def test_the_event_id_is_stable_across_identifiers_and_differs_by_update() -> None:
    def record(identifier: int, session_time: int) -> rp.AccountingRecord:
        raw = rp.sign_accounting_request(identifier, attrs(rp.INTERIM_UPDATE, acct_session_time=session_time),
                                         SECRET)
        return rp.accounting_record(rp.parse_packet(raw))

    assert rp.event_id("nas", record(1, 60)) == rp.event_id("nas", record(200, 60))
    assert rp.event_id("nas", record(1, 60)) != rp.event_id("nas", record(1, 120))


@pytest.mark.parametrize("called, ap", [
    ("AA-BB-CC-00-00-01:@wifi.pbg", "aa-bb-cc-00-00-01"), ("aa:bb:cc:00:00:01:ssid", "aa-bb-cc-00-00-01"),
    ("AA:BB:CC:00:00:01", "aa-bb-cc-00-00-01"), ("hotspot1:@wifi.pbg", "hotspot1"), ("hotspot1", "hotspot1"),
])
def test_called_station_id_names_the_ap(called: str, ap: str) -> None:
    assert rp.called_station_ap(called) == ap


def table(tmp_path: Path) -> NasTable:
    (tmp_path / "nas.secret").write_text("s3cret-nas\n")
    (tmp_path / "nas.yaml").write_text(
        "nas:\n  - nas_identifier: mikrotik-alun-alun\n    secret_file: nas.secret\n"
        "    ap_id: ap-alun-alun-01\n    site_id: alun-alun\n"
        "access_points:\n  'AA-BB-CC-00-00-01': {ap_id: ap-alun-alun-02}\n")
    return NasTable.load(tmp_path / "nas.yaml")


def test_the_nas_table_maps_the_nas_and_the_called_station(tmp_path: Path) -> None:
    nas_table = table(tmp_path)
    packet = rp.parse_packet(rp.sign_accounting_request(1, attrs(), SECRET))
    nas = nas_table.find(packet, "10.0.0.9")
    assert nas is not None and nas.secret == SECRET
    record = rp.accounting_record(packet)
    placement = nas_table.placement(nas, record)
    assert (placement.ap_id, placement.site_id) == ("ap-alun-alun-02", "alun-alun")


def test_a_nas_without_secret_is_a_settings_error(tmp_path: Path) -> None:
    (tmp_path / "nas.yaml").write_text("nas:\n  - nas_ip: 10.0.0.2\n")
    with pytest.raises(SettingsError, match="no secret"):
        NasTable.load(tmp_path / "nas.yaml")


def test_the_session_event_carries_the_hash_never_the_mac(tmp_path: Path) -> None:
    nas_table = table(tmp_path)
    packet = rp.parse_packet(rp.sign_accounting_request(
        1, attrs(rp.INTERIM_UPDATE, acct_input_octets=10, acct_session_time=60, event_timestamp=1764300000),
        SECRET))
    nas = nas_table.find(packet, "")
    assert nas is not None
    record = rp.accounting_record(packet)
    hasher = ClientHasher("salt")
    event = session_event(record, nas_table.placement(nas, record), hasher, nas.key, 1764300099.0)
    assert event.kind == wifi_pb2.SESSION_EVENT_KIND_INTERIM_UPDATE
    assert event.client_hash == hasher.hash(MAC)
    assert from_timestamp(event.event_time) == 1764300000.0
    payload = event.SerializeToString()
    assert MAC.encode() not in payload and b"a4:5e:60" not in payload.lower()


def test_accounting_on_carries_no_session(tmp_path: Path) -> None:
    nas_table = table(tmp_path)
    packet = rp.parse_packet(rp.sign_accounting_request(1, attrs(rp.ACCOUNTING_ON), SECRET))
    nas = nas_table.find(packet, "")
    assert nas is not None
    record = rp.accounting_record(packet)
    with pytest.raises(ValueError, match="accounting_on"):
        session_event(record, nas_table.placement(nas, record), ClientHasher("salt"), nas.key, 0.0)


def test_the_dedup_cache_is_bounded_and_expires() -> None:
    cache = TtlCache(size=2, ttl_s=10)
    for key in "abc":
        cache.put(key, key, now=0.0)
    assert cache.get("a", 1.0) is None and cache.get("c", 1.0) == "c"
    assert cache.get("c", 11.0) is None
