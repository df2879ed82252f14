"""Codec, dead letters, catalogue, ids, settings, tracing headers: plain unit tests."""

from __future__ import annotations

import pytest
from google.protobuf import symbol_database

from smartcity import topics
from smartcity.codec import DecodeError, ProtoCodec, from_timestamp, require_fields, to_timestamp
from smartcity.dlq import SourceRecord, dead_letter_for
from smartcity.ids import request_id_for
from smartcity.settings import PlatformSettings, SettingsError, env_bool, env_int
from smartcity.tracing import extract_context, inject_headers
from smartcity.v1 import camera_pb2, gateway_pb2, requests_pb2, wifi_pb2  # noqa: F401  (registers types)


def test_codec_round_trips_and_rejects_garbage() -> None:
    codec = ProtoCodec(wifi_pb2.ApTelemetry, require_fields("ap_id", "observed_time"))
    msg = wifi_pb2.ApTelemetry(ap_id="ap-1", seq=7, cpu_percent=12.5)
    msg.observed_time.CopyFrom(to_timestamp(1_700_000_000.5))
    assert codec.decode(codec.encode(msg)) == msg
    with pytest.raises(DecodeError, match=r"not a smartcity\.v1\.ApTelemetry"):
        codec.decode(b"\xff\xff\xff")
    with pytest.raises(DecodeError, match="missing required field"):
        codec.decode(wifi_pb2.ApTelemetry(seq=1).SerializeToString())
    with pytest.raises(DecodeError, match="tombstone"):
        codec.decode(None)
    with pytest.raises(TypeError):
        codec.encode(camera_pb2.CameraHeartbeat())  # type: ignore[arg-type]


def test_timestamps_convert_both_ways() -> None:
    assert from_timestamp(to_timestamp(1_700_000_000.25)) == 1_700_000_000.25
    assert from_timestamp(to_timestamp(0)) == 0


def test_dead_letter_keeps_the_bytes_and_says_why_and_where() -> None:
    record = SourceRecord("p.wifi.ap-telemetry.v1", 2, 41, b"ap-1", b"\x00bad",
                          [("traceparent", b"00-abc"), ("dlq.error", b"stale")])
    letter = dead_letter_for(record, "not a smartcity.v1.ApTelemetry", "wifi-telemetry")
    headers = dict(letter.headers)
    assert letter.topic == "p.wifi.ap-telemetry.v1.dlq"
    assert (letter.key, letter.value) == (b"ap-1", b"\x00bad")
    assert headers["dlq.error"] == b"not a smartcity.v1.ApTelemetry"
    assert headers["dlq.source.partition"] == b"2" and headers["dlq.source.offset"] == b"41"
    assert headers["traceparent"] == b"00-abc"  # original headers kept, old dlq.* replaced
    assert [k for k, _ in letter.headers].count("dlq.error") == 1


def test_every_catalogue_value_type_is_in_the_contract() -> None:
    db = symbol_database.Default()
    catalogue = topics.load_catalogue()
    for spec in catalogue.topics:
        assert db.GetSymbol(spec.value) is not None, spec.value
    names = [t.name for t in catalogue.all_topics()]
    assert len(names) == len(set(names))
    assert catalogue["requests.commands.v1"].dlq_name("x.") == "x.requests.commands.v1.dlq"
    with pytest.raises(KeyError):
        catalogue["requests.state.v1"].dlq_name()
    with pytest.raises(KeyError, match="not in the catalogue"):
        catalogue["nope.v1"]


def test_compacted_topics_are_compacted_and_streams_are_not() -> None:
    for spec in topics.load_catalogue().topics:
        policy = spec.config["cleanup.policy"]
        assert policy == ("compact" if spec.kind == "compacted" else "delete"), spec.name


def test_request_ids_are_deterministic_per_client_and_key() -> None:
    assert request_id_for("dpmptsp", "k-123") == request_id_for("dpmptsp", "k-123")
    assert request_id_for("dpmptsp", "k-123") != request_id_for("dinkes", "k-123")
    with pytest.raises(ValueError):
        request_id_for("dpmptsp", "")


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("SMARTCITY_TOPIC_PREFIX", "demo.")
    monkeypatch.setenv("METRICS_PORT", "9200")
    s = PlatformSettings.from_env("wifi-telemetry")
    assert (s.kafka_bootstrap, s.group_id, s.metrics_port) == ("k1:9092,k2:9092", "demo.wifi-telemetry", 9200)
    monkeypatch.setenv("METRICS_PORT", "ninety")
    with pytest.raises(SettingsError, match="METRICS_PORT='ninety' is not an integer"):
        env_int("METRICS_PORT", 0)
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(SettingsError):
        env_bool("FLAG", False)


def test_trace_context_travels_in_headers() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("produce") as span:
        headers = inject_headers([("other", b"1")])
    assert dict(headers)["other"] == b"1" and "traceparent" in dict(headers)
    parent = trace.get_current_span(extract_context(headers)).get_span_context()
    assert parent.trace_id == span.get_span_context().trace_id
    assert not trace.get_current_span(extract_context([])).get_span_context().is_valid
