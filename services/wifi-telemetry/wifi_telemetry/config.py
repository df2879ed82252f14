"""Configuration of the wifi-telemetry service, from the environment with local defaults.

Every threshold, tolerance, window and cadence is here so a demo or a test can shorten it:

    WIFI_HEARTBEAT_TOLERANCE_S      silence before an AP is CRITICAL (offline)      90
    WIFI_CPU_THRESHOLD_PERCENT      CPU above this fails the cpu check              90
    WIFI_CPU_TOLERANCE_S            ... for this long before PROBLEM                300
    WIFI_CPU_RECOVERY_S             clear for this long before the check stops      0
    WIFI_MEMORY_THRESHOLD_PERCENT   memory above this fails the memory check        95
    WIFI_MEMORY_TOLERANCE_S         ... for this long before PROBLEM                300
    WIFI_MEMORY_RECOVERY_S          clear for this long before the check stops      0
    WIFI_REORDER_WINDOW_S           event time a seq gap may stay open (reorder)    30
    WIFI_REORDER_MAX_PENDING        samples held per AP while waiting for a gap     32
    WIFI_ALLOWED_LATENESS_S         how late (event time) data may still change a
                                    closed statistics window                        600
    WIFI_TZ_OFFSET_S                offset of local time (day windows), WIB = +7 h  25200
    WIFI_STATUS_INTERVAL_S          steady cadence of AccessPointStatus             30
    WIFI_STATS_INTERVAL_S           cadence of SiteWifiStats (when changed)         5
    WIFI_TICK_INTERVAL_S            how often the silence timer looks               1
    WIFI_SITE_PARTITIONS            partitions of the internal by-site topic        6
    WIFI_SESSION_TIMEOUT_S          Kafka group session timeout: how soon the
                                    partitions of a crashed worker move on          10
    WIFI_INGEST_BATCH_WAIT_S        how long the re-key stage gathers single
                                    readings into one batch (see streams.py)        0.1
    WIFI_DATA_DIR                   Faust's local data directory                    <tmp>/smartcity
    EVENT_LOOP                      uvloop or asyncio (smartcity.event_loop)        uvloop
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from smartcity.event_loop import DEFAULT_EVENT_LOOP, event_loop_from_env
from smartcity.settings import env_fields

ENV_PREFIX = "WIFI_"
SERVICE_NAME = "wifi-telemetry"
DEFAULT_METRICS_PORT = 9101

MINUTE = 60
HOUR = 3600
DAY = 86400
# Tumbling windows of the site statistics: name (as in the topic key) and length in seconds.
WINDOWS: tuple[tuple[str, int], ...] = (("minute", MINUTE), ("hour", HOUR), ("day", DAY))
WINDOW_SIZES: dict[str, int] = dict(WINDOWS)


@dataclass(frozen=True)
class HealthConfig:
    """The AP health checks (ARCHITECTURE.md, Health model)."""

    heartbeat_tolerance_s: float = 90.0
    cpu_threshold_percent: float = 90.0
    cpu_tolerance_s: float = 300.0
    cpu_recovery_s: float = 0.0
    memory_threshold_percent: float = 95.0
    memory_tolerance_s: float = 300.0
    memory_recovery_s: float = 0.0

    @classmethod
    def from_env(cls) -> HealthConfig:
        return cls(**env_fields(cls, ENV_PREFIX))


@dataclass(frozen=True)
class WifiConfig:
    """Everything the processor needs besides the platform settings."""

    health: HealthConfig = field(default_factory=HealthConfig)
    reorder_window_s: float = 30.0
    reorder_max_pending: int = 32
    allowed_lateness_s: float = 600.0
    tz_offset_s: int = 7 * HOUR
    status_interval_s: float = 30.0
    stats_interval_s: float = 5.0
    tick_interval_s: float = 1.0
    site_partitions: int = 6
    session_timeout_s: float = 10.0
    # Single readings gathered this long make one by-site message per site: the second stage pays
    # Faust's cost per message (about a bare agent's) once per message, so 0.02 s (6 readings a
    # message in the benchmark) cost a third more CPU per reading than 0.1 s (32 a message),
    # for up to this much latency (edge batches, read directly, do not wait here).
    ingest_batch_wait_s: float = 0.1
    data_dir: str = str(Path(tempfile.gettempdir()) / "smartcity")
    event_loop: str = DEFAULT_EVENT_LOOP  # EVENT_LOOP, as every service names it

    @classmethod
    def from_env(cls) -> WifiConfig:
        config = cls(health=HealthConfig.from_env(), **env_fields(cls, ENV_PREFIX, skip={"event_loop"}),
                     event_loop=event_loop_from_env(cls.event_loop))
        config.validate()
        return config

    def validate(self) -> None:
        from smartcity.settings import SettingsError

        positive = {
            "WIFI_HEARTBEAT_TOLERANCE_S": self.health.heartbeat_tolerance_s,
            "WIFI_STATUS_INTERVAL_S": self.status_interval_s,
            "WIFI_STATS_INTERVAL_S": self.stats_interval_s,
            "WIFI_TICK_INTERVAL_S": self.tick_interval_s,
            "WIFI_SITE_PARTITIONS": self.site_partitions,
            "WIFI_REORDER_MAX_PENDING": self.reorder_max_pending,
            "WIFI_SESSION_TIMEOUT_S": self.session_timeout_s,
            "WIFI_INGEST_BATCH_WAIT_S": self.ingest_batch_wait_s,
        }
        for name, value in positive.items():
            if value <= 0:
                raise SettingsError(f"{name} must be positive, got {value}")
        if self.allowed_lateness_s < 0 or self.reorder_window_s < 0:
            raise SettingsError("WIFI_ALLOWED_LATENESS_S and WIFI_REORDER_WINDOW_S must be >= 0")
