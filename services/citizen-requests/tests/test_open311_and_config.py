"""Open311 GeoReport v2 mapping and the routing/SLA configuration (no Kafka)."""

from __future__ import annotations

from pathlib import Path

import pytest

from citizen_requests.config import ConfigError, ServiceSettings, load_config, parse_duration
from citizen_requests.core.ledger import Ledger
from citizen_requests.core.open311 import to_open311
from citizen_requests.sim.command_builders import STAFF, action_command, actor, submit_command
from smartcity.v1 import requests_pb2 as pb

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z = 07:00 WIB


def test_open311_fields_of_a_request() -> None:
    ledger = Ledger(load_config())
    reporter = pb.Reporter(name="Siti Aminah", phone="081234567890", email="siti@example.id")
    cmd = submit_command(client_id="gw", idempotency_key="k", category="street_lights", issued_at=T0,
                         description="Lampu PJU mati", latitude=-7.39, longitude=109.36,
                         address="Jl. Jend. Sudirman", media_url="https://img.example/1.jpg")
    request = ledger.command(cmd).state
    assert request is not None
    request.reporter.CopyFrom(reporter)  # as the gateway opens it for the routed OPD
    view = to_open311(request)
    assert view == {
        "service_request_id": request.request_id, "status": "open", "status_notes": "routed to DISHUB",
        "service_name": "Penerangan Jalan Umum", "service_code": "street_lights",
        "description": "Lampu PJU mati", "agency_responsible": "DISHUB", "service_notice": "",
        "requested_datetime": "2026-01-01T07:00:00+07:00", "updated_datetime": "2026-01-01T07:00:00+07:00",
        "expected_datetime": "2026-01-08T07:00:00+07:00", "address": "Jl. Jend. Sudirman",
        "address_string": "Jl. Jend. Sudirman", "lat": -7.39, "long": 109.36,
        "media_url": "https://img.example/1.jpg",
    }
    assert "081234567890" not in str(view)  # personal data only on request
    with_contact = to_open311(request, include_reporter=True)
    assert (with_contact["first_name"], with_contact["last_name"]) == ("Siti", "Aminah")
    by = actor(STAFF, "a", "DISHUB")
    rejected = ledger.command(action_command(request.request_id, "reject", issued_at=T0 + 60, by=by,
                                             client_id="c", reason="di luar wilayah")).state
    assert rejected is not None and to_open311(rejected)["status"] == "closed"
    assert to_open311(rejected)["status_notes"] == "di luar wilayah"


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("5m", 300), ("4h", 14400), ("2d", 172800),
                                               ("1.5h", 5400), (30, 30), ("45", 45)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5 minutes", "-1m", "0", ""])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(bad)


def test_sla_overrides_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_SLA_SCALE", "0.5")
    monkeypatch.setenv("REQUESTS_SLA_EMERGENCY_ACKNOWLEDGE_S", "20")
    config = load_config()
    emergency = config.sla_for("emergency", pb.PRIORITY_EMERGENCY)
    assert (emergency.acknowledge_s, emergency.resolve_s) == (20, 2 * 3600)
    assert config.sla_for("roads", pb.PRIORITY_NORMAL).acknowledge_s == 12 * 3600
    # Other categories' emergency-priority requests keep the (scaled) global 5 minutes.
    assert config.sla_for("roads", pb.PRIORITY_EMERGENCY).acknowledge_s == 150


def test_config_from_another_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("command_center: RUANG_KENDALI\ncategories:\n"
                    "  potholes: {opd: PUPR, sla: {default: {acknowledge: 1h, resolve: 1d}}}\n")
    monkeypatch.setenv("REQUESTS_CONFIG_PATH", str(path))
    config = load_config()
    assert list(config.categories) == ["potholes"]
    assert config.opd_for("potholes") == "PUPR" and config.opd_for("unknown") == "RUANG_KENDALI"


@pytest.mark.parametrize("body", [
    "categories: {}\n",
    "categories:\n  x: {sla: {default: {acknowledge: 1h}}}\n",
    "categories:\n  x: {opd: A, sla: {urgent: {acknowledge: 1h, resolve: 2h}}}\n",
])
def test_broken_configs_are_refused(tmp_path: Path, body: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError):
        load_config(path)


def test_service_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_SLA_CHECK_INTERVAL_S", "0.5")
    monkeypatch.setenv("REQUESTS_OUTCOME_MEMORY", "8")
    settings = ServiceSettings.from_env()
    assert (settings.sla_check_interval_s, settings.outcome_memory) == (0.5, 8)
    assert settings.utc_offset_h == 7.0
