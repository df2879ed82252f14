"""Settings from the environment with local defaults (12-factor).

Every service reads the same names, so one ConfigMap or one shell export configures them all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

LOCAL_BOOTSTRAP = "127.0.0.1:9092"


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not an integer") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a number") from exc


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true/false)")


@dataclass(frozen=True)
class PlatformSettings:
    """What every process of the platform needs.

    KAFKA_BOOTSTRAP_SERVERS   brokers, comma separated (default the local broker)
    SMARTCITY_TOPIC_PREFIX    prepended to every topic and consumer group: isolates tests
                              and lets several cities share one cluster (default none)
    METRICS_PORT              port of the /metrics, /healthz and /readyz endpoint (0 = off)
    METRICS_HOST              interface it binds (default 127.0.0.1; 0.0.0.0 in a pod)
    LOG_LEVEL                 DEBUG, INFO, WARNING, ERROR (default INFO)
    LOG_FORMAT                json or text (default json)
    OTEL_EXPORTER_OTLP_ENDPOINT  OTLP/HTTP collector; traces are only exported when set
    TOPIC_REPLICATION_FACTOR  replicas of the topics a service creates itself (table changelogs,
                              timer ticks); default 1 for the single local broker, 3 in prod
    """

    service_name: str
    kafka_bootstrap: str = LOCAL_BOOTSTRAP
    topic_prefix: str = ""
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    log_level: str = "INFO"
    log_format: str = "json"
    otlp_endpoint: str = ""
    topic_replication_factor: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, service_name: str, default_metrics_port: int = 0) -> PlatformSettings:
        return cls(
            service_name=service_name,
            kafka_bootstrap=env_str("KAFKA_BOOTSTRAP_SERVERS", LOCAL_BOOTSTRAP),
            topic_prefix=env_str("SMARTCITY_TOPIC_PREFIX", ""),
            metrics_host=env_str("METRICS_HOST", "127.0.0.1"),
            metrics_port=env_int("METRICS_PORT", default_metrics_port),
            log_level=env_str("LOG_LEVEL", "INFO").upper(),
            log_format=env_str("LOG_FORMAT", "json").lower(),
            otlp_endpoint=env_str("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
            topic_replication_factor=env_int("TOPIC_REPLICATION_FACTOR", 1),
        )

    @property
    def group_id(self) -> str:
        """Consumer group (and Faust app id) of this service, isolated by the topic prefix."""
        return f"{self.topic_prefix}{self.service_name}"
