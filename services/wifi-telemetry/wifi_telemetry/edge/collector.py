"""Collector CLI: JSON readings on stdin → hashed, contract events on Kafka.

    some-poller | python -m wifi_telemetry.edge.collector

One JSON object per line, `{"type": "telemetry", ...}` or `{"type": "session", ...}`, the rest
being a reading as documented in `wifi_telemetry.edge.readings`. Uses KAFKA_BOOTSTRAP_SERVERS,
SMARTCITY_TOPIC_PREFIX and WIFI_CLIENT_HASH_SALT. A line that cannot be used is reported on
stderr by line number and reason only (it may hold a raw MAC), and the collector carries on;
the exit status is 1 when any line was rejected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from smartcity.observability import configure_logging
from smartcity.settings import PlatformSettings
from wifi_telemetry.core.privacy import redact_macs
from wifi_telemetry.edge.readings import EdgeCollector

log = logging.getLogger("wifi_telemetry.edge.collector")


async def forward(lines: Iterable[str], collector: EdgeCollector) -> tuple[int, int]:
    """Sends each reading; returns (sent, rejected)."""
    sent = rejected = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            reading: Mapping[str, Any] = json.loads(line)
            kind = reading.get("type")
            if kind == "telemetry":
                await collector.send_telemetry(reading)
            elif kind == "session":
                await collector.send_session(reading)
            else:
                raise ValueError("type must be 'telemetry' or 'session'")
            sent += 1
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            rejected += 1
            # Never the line itself (it may hold a raw MAC); the reason, MAC-like text masked.
            log.warning("line %d rejected: %s", number, type(exc).__name__ + ": " + _reason(exc))
    await collector.flush()
    return sent, rejected


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, json.JSONDecodeError):
        return "not JSON"
    return redact_macs(str(exc))


async def _main() -> int:
    settings = PlatformSettings.from_env("wifi-collector")
    configure_logging(settings)
    collector = await EdgeCollector(settings).start()
    try:
        sent, rejected = await forward(sys.stdin, collector)
    finally:
        await collector.stop()
    log.info("sent %d readings, rejected %d", sent, rejected)
    return 1 if rejected else 0


def main() -> None:
    sys.exit(asyncio.run(_main()))


if __name__ == "__main__":
    main()
