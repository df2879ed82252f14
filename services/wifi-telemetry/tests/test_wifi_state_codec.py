"""The state table's codec: MessagePack written, records written before as JSON still read."""

from __future__ import annotations

import json
from typing import Any

from faust.serializers import codecs
from hypothesis import given, settings
from hypothesis import strategies as st

from wifi_telemetry.adapters.state_codec import STATE_CODEC, is_msgpack_map
from wifi_telemetry.config import WifiConfig
from wifi_telemetry.core.domain import Sample
from wifi_telemetry.core.processor import SiteProcessor

T0 = 1_800_000_000.0
FAUST_JSON = codecs.get_codec("json")  # what the table's changelog held before

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: (st.lists(children, max_size=5)
                      | st.dictionaries(st.text(max_size=10), children, max_size=5)),
    max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8))
def test_a_record_reads_back_as_its_json_would(record: dict[str, Any]) -> None:
    encoded = STATE_CODEC.dumps(record)
    assert is_msgpack_map(encoded)
    assert STATE_CODEC.loads(encoded) == json.loads(FAUST_JSON.dumps(record))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8))
def test_a_record_written_as_json_before_is_read(record: dict[str, Any]) -> None:
    old = FAUST_JSON.dumps(record)
    assert not is_msgpack_map(old)
    assert STATE_CODEC.loads(old) == FAUST_JSON.loads(old)


def _readings(processor: SiteProcessor, seconds: range) -> None:
    for s in seconds:
        for site in ("alun-alun", "pendopo"):
            for n in range(4):
                memory = 95.0 if n == 1 else 40.0  # one AP's check fails, fires, stays firing
                processor.on_telemetry(Sample(f"ap-{site}-{n}", site, s + 1, T0 + 7 * s, s * 7, 20.0, memory,
                                              n + s % 3, 1000 * s, 3000 * s), partition=n % 2)
        processor.flush()


def test_a_deployment_upgrades_in_place_from_json_records() -> None:
    """A worker restarted over JSON records (the changelog before) goes on exactly as one that
    never stopped; what it writes then is MessagePack, and both read back the same."""
    config = WifiConfig()
    straight = SiteProcessor(config, {}, write_behind=True)
    _readings(straight, range(0, 200))
    before: dict[str, Any] = {}
    _readings(SiteProcessor(config, before, write_behind=True), range(0, 100))
    recovered = {key: STATE_CODEC.loads(FAUST_JSON.dumps(value)) for key, value in before.items()}
    upgraded = SiteProcessor(config, recovered, write_behind=True)
    _readings(upgraded, range(100, 200))
    assert _read_back(recovered) == _read_back(straight.store)  # type: ignore[arg-type]
    # Mixed: some records still JSON, others rewritten since, read together.
    mixed = {key: STATE_CODEC.loads(STATE_CODEC.dumps(value) if key.endswith("alun-alun")
                                    else FAUST_JSON.dumps(value))
             for key, value in recovered.items()}
    assert mixed == _read_back(recovered)


def _read_back(store: dict[str, Any]) -> dict[str, Any]:
    return {key: STATE_CODEC.loads(STATE_CODEC.dumps(value)) for key, value in store.items()}


def test_the_state_table_its_changelog_and_the_recovery_s_copy_use_the_state_codec() -> None:
    """Faust gives the table's changelog topic its own JSON when the table is declared: a
    restart read MessagePack records as JSON (found by the kill -9 test)."""
    from smartcity.settings import PlatformSettings
    from wifi_telemetry.adapters.streams import WifiTelemetryService

    service = WifiTelemetryService(PlatformSettings.from_env("wifi-telemetry"), WifiConfig())
    changelog = service.table.changelog_topic
    recovery_copy = changelog.clone()
    assert service.table.value_serializer is STATE_CODEC
    assert changelog.schema.value_serializer is STATE_CODEC
    assert recovery_copy.schema.value_serializer is STATE_CODEC
    assert recovery_copy.value_serializer is STATE_CODEC  # type: ignore[attr-defined]
