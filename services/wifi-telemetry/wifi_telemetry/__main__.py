"""Entry point: `python -m wifi_telemetry` (console script `wifi-telemetry`).

Runs the Faust worker with /metrics, /healthz and /readyz on METRICS_PORT (default 9101).
Configuration: the platform's settings (smartcity.settings) and wifi_telemetry.config.
"""

from __future__ import annotations

from smartcity.event_loop import use_event_loop
from smartcity.gc_thresholds import gc_thresholds_from_env, use_gc_thresholds
from smartcity.settings import PlatformSettings
from wifi_telemetry.adapters.streams import WifiTelemetryService
from wifi_telemetry.config import DEFAULT_METRICS_PORT, SERVICE_NAME, WifiConfig


def main() -> None:
    settings = PlatformSettings.from_env(SERVICE_NAME, DEFAULT_METRICS_PORT)
    config = WifiConfig.from_env()
    use_event_loop(config.event_loop, current=True)  # before Faust is built: it runs on this loop
    use_gc_thresholds(gc_thresholds_from_env())  # see smartcity.gc_thresholds
    WifiTelemetryService(settings, config).serve()


if __name__ == "__main__":
    main()
