"""Entry point: `python -m camera_health` (console script `camera-health`).

Runs the Faust worker against KAFKA_BOOTSTRAP_SERVERS with topics under SMARTCITY_TOPIC_PREFIX,
serving /metrics, /healthz and /readyz on METRICS_PORT (default 9102). Thresholds and timers:
see `camera_health.config`.
"""

from __future__ import annotations

import logging

from camera_health.adapters.streams import SERVICE, CameraHealthService, describe
from camera_health.config import ServiceConfig
from smartcity.event_loop import use_event_loop
from smartcity.gc_thresholds import gc_thresholds_from_env, use_gc_thresholds
from smartcity.observability import configure_logging
from smartcity.settings import PlatformSettings

METRICS_PORT = 9102


def main() -> None:
    settings = PlatformSettings.from_env(SERVICE, default_metrics_port=METRICS_PORT)
    config = ServiceConfig.from_env()
    use_event_loop(config.event_loop, current=True)  # before Faust is built: it runs on this loop
    use_gc_thresholds(gc_thresholds_from_env())  # see smartcity.gc_thresholds
    configure_logging(settings)
    for line in describe(settings, config):
        logging.getLogger("camera_health").info(line)
    CameraHealthService(settings, config).serve()


if __name__ == "__main__":
    main()
