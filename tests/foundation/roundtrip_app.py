"""A minimal Faust service used by the foundation tests: counts telemetry per AP in a table.

It decodes `ApTelemetry` through the shared codec (bad bytes go to the DLQ), keeps a count per
AP in a table (changelog-backed, so it survives a restart), and writes each new count, with the
trace context continued, to `<prefix>roundtrip.counts` as "ap_id=count". Counting is not
idempotent on purpose: a record processed twice shows as a count too many.

Test knobs: ROUNDTRIP_SCHEME (a transport of tests/foundation/slow_seek.py) and
ROUNDTRIP_EVENT_DELAY_S (a pause per event, a slow agent).
"""

from __future__ import annotations

import asyncio
import os

from opentelemetry import trace

from smartcity.codec import ProtoCodec, require_fields
from smartcity.observability import configure_logging
from smartcity.settings import PlatformSettings
from smartcity.streams import (
    bytes_topic,
    create_app,
    decoded,
    faust_dead_letter_publisher,
    raw_topic,
    run_worker,
)
from smartcity.tracing import inject_headers, setup_tracing
from smartcity.v1 import wifi_pb2

settings = PlatformSettings.from_env("roundtrip")
setup_tracing(settings)
# Test knobs: a transport scheme (tests/foundation/slow_seek.py) and a pause per event.
SCHEME = os.environ.get("ROUNDTRIP_SCHEME", "")
EVENT_DELAY_S = float(os.environ.get("ROUNDTRIP_EVENT_DELAY_S", "0"))
if SCHEME:
    import tests.foundation.slow_seek  # noqa: F401  (registers the schemes)

    app = create_app(settings, broker=";".join(f"{SCHEME}://{b.strip()}"
                                               for b in settings.kafka_bootstrap.split(",")))
else:
    app = create_app(settings)
telemetry = raw_topic(app, "wifi.ap-telemetry.v1", settings.topic_prefix)
counts_out = bytes_topic(app, f"{settings.topic_prefix}roundtrip.counts")
counts = app.Table("counts", default=int, partitions=6)
codec = ProtoCodec(wifi_pb2.ApTelemetry, require_fields("ap_id", "observed_time"))
dlq = faust_dead_letter_publisher(app, settings.service_name)
tracer = trace.get_tracer("roundtrip")


@app.task
async def declare_output() -> None:
    # The broker does not auto-create topics; this one is the test app's own, not the catalogue's.
    await counts_out.maybe_declare()


@app.agent(telemetry)
async def count(stream):  # type: ignore[no-untyped-def]
    async for item in decoded(stream, codec, dlq, settings.service_name):
        if EVENT_DELAY_S:
            await asyncio.sleep(EVENT_DELAY_S)
        with tracer.start_as_current_span("count", context=item.trace_context):
            counts[item.key] += 1
            await counts_out.send(key=item.key.encode(),
                                  value=f"{item.key}={counts[item.key]}".encode(),
                                  headers=inject_headers())


if __name__ == "__main__":
    configure_logging(settings)
    run_worker(app, settings)
