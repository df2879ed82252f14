"""The by-site batch messages the ingest stage makes of single readings, from their own bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.v1 import wifi_pb2
from wifi_telemetry.adapters import streams


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["alun-alun", "pendopo", "s" * 200]), st.integers(0, 2**40),
                          st.text(max_size=300)), max_size=40),
       st.integers(1, 5))
def test_a_by_site_batch_made_of_the_readings_bytes_is_the_batch_of_those_readings(
        readings: list[tuple[str, int, str]], chunk: int) -> None:
    messages = [wifi_pb2.ApTelemetry(ap_id=f"ap-{n}", site_id=site, seq=seq, name=name)
                for n, (site, seq, name) in enumerate(readings)]
    original, streams.FORWARD_CHUNK = streams.FORWARD_CHUNK, chunk
    try:
        made = streams.batches_by_site([(m.site_id, m.SerializeToString()) for m in messages])
    finally:
        streams.FORWARD_CHUNK = original
    want = []
    for site in dict.fromkeys(m.site_id for m in messages):
        group = [m for m in messages if m.site_id == site]
        want += [(site, wifi_pb2.ApTelemetryBatch(site_id=site, readings=group[i:i + chunk]))
                 for i in range(0, len(group), chunk)]
    assert [(site, wifi_pb2.ApTelemetryBatch.FromString(value)) for site, value in made] == want
