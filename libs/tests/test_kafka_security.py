"""Kafka security settings (KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*) and the one
function that turns them into client arguments, without a broker."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials

from smartcity.kafka import client_security, make_consumer, make_producer, producer_config
from smartcity.settings import KafkaSecurity, PlatformSettings, SettingsError
from smartcity.streams import create_app, faust_credentials

SECURITY_VARS = ("KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME",
                 "KAFKA_SASL_PASSWORD", "KAFKA_SASL_PASSWORD_FILE", "KAFKA_SSL_CAFILE",
                 "KAFKA_SSL_CERTFILE", "KAFKA_SSL_KEYFILE")
CA = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECURITY_VARS:
        monkeypatch.delenv(name, raising=False)


def test_plaintext_by_default_and_clients_unchanged() -> None:
    settings = PlatformSettings.from_env("svc")
    assert settings.kafka_security == KafkaSecurity()
    assert client_security(settings) == {}
    assert "security_protocol" not in producer_config(settings)
    assert faust_credentials(settings) is None


async def test_sasl_scram_from_env_with_password_file(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("pw-from-secret\n")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "sasl_plaintext")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "wifi-telemetry")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret))
    settings = PlatformSettings.from_env("wifi-telemetry")
    assert client_security(settings) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "wifi-telemetry", "sasl_plain_password": "pw-from-secret"}
    # Every client of the platform gets the same arguments.
    producer, consumer = make_producer(settings), make_consumer(settings, "t")
    assert producer.client._sasl_plain_password == "pw-from-secret"
    assert consumer._client._security_protocol == "SASL_PLAINTEXT"
    await producer.stop()
    await consumer.stop()
    credentials = create_app(settings).conf.broker_credentials
    assert isinstance(credentials, SASLCredentials)
    assert (credentials.username, credentials.mechanism.value) == ("wifi-telemetry", "SCRAM-SHA-512")


def test_sasl_ssl_and_mutual_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "gateway")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(CA))
    kwargs = client_security(PlatformSettings.from_env("gateway"))
    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED and kwargs["ssl_context"].check_hostname
    credentials = faust_credentials(PlatformSettings.from_env("gateway"))
    assert isinstance(credentials, SASLCredentials) and credentials.protocol.value == "SASL_SSL"
    tls_only = KafkaSecurity(protocol="SSL", ssl_cafile=str(CA))
    assert set(client_security(tls_only)) == {"security_protocol", "ssl_context"}
    assert isinstance(faust_credentials(PlatformSettings("svc", kafka_security=tls_only)), SSLCredentials)


@pytest.mark.parametrize(("env", "message"), [
    ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL='TLS' is not one of"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_USERNAME": "u",
      "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SASL_MECHANISM='GSSAPI' is not one of"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_PASSWORD": "p"}, "KAFKA_SASL_USERNAME is required"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u"}, "KAFKA_SASL_PASSWORD"),
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u",
      "KAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw"},
     "KAFKA_SASL_PASSWORD_FILE='/nonexistent/pw': no such file"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.crt"}, "KAFKA_SSL_CAFILE="),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": str(CA)}, "KAFKA_SSL_KEYFILE go together"),
    ({"KAFKA_SSL_CAFILE": str(CA)}, "does not use TLS"),
])
def test_misconfigurations_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                             message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        PlatformSettings.from_env("svc")


def test_the_password_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "camera-health")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "hunter2-very-secret")
    settings = PlatformSettings.from_env("camera-health")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert "camera-health" in repr(settings.kafka_security)
    assert "hunter2" not in repr(faust_credentials(settings))
