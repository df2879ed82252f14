"""A minimal Faust service used by the foundation tests: counts telemetry per AP in a table.

It decodes `ApTelemetry` through the shared codec (bad bytes go to the DLQ), keeps a count per
AP in a table (changelog-backed, so it survives a restart), and writes each new count, with the
trace context continued, to `<prefix>roundtrip.counts` as "ap_id=count".
"""

from __future__ import annotations

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
        with tracer.start_as_current_span("count", context=item.trace_context):
            counts[item.key] += 1
            await counts_out.send(key=item.key.encode(),
                                  value=f"{item.key}={counts[item.key]}".encode(),
                                  headers=inject_headers())


if __name__ == "__main__":
    configure_logging(settings)
    run_worker(app, settings)
