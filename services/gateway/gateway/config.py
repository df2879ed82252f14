"""Gateway configuration from the environment, with local defaults.

    GATEWAY_ADDRESS                 listen address (127.0.0.1:50051)
    GATEWAY_TOKENS_FILE             token file (YAML/JSON, SHA-256 hashes); unset = the dev tokens
    GATEWAY_TLS_CERT_FILE / _KEY_FILE   serve TLS when both are set
    GATEWAY_MAX_RECEIVE_BYTES       largest request message accepted (65536)
    GATEWAY_MAX_SEND_BYTES          largest response message (16 MiB)
    GATEWAY_RATE_LIMIT_RPS          per-client token bucket refill rate (100/s) ...
    GATEWAY_RATE_LIMIT_BURST        ... and size (200); a token file entry may override both
    GATEWAY_COMMAND_TIMEOUT_S       longest wait for a command's outcome when the caller set no
                                    deadline (10)
    GATEWAY_WATCH_QUEUE_SIZE        changes buffered per watch subscriber before it is dropped (1000)
    GATEWAY_MAX_STREAMS_PER_CLIENT  concurrent watch streams per client (20)
    GATEWAY_SNAPSHOT_INTERVAL_S     default WatchCitySnapshot interval (2)
    GATEWAY_SNAPSHOT_MIN_INTERVAL_S shortest allowed WatchCitySnapshot interval (1)
    GATEWAY_SNAPSHOT_CACHE_S        reuse a computed snapshot while the views are unchanged, up to (1)
    GATEWAY_MAX_RESOLVED_INCIDENTS  resolved incidents kept in memory (10000)
    GATEWAY_MAX_EVENTS_PER_REQUEST  audit events kept in memory per request (1000)
    GATEWAY_SHUTDOWN_GRACE_S        time in-flight calls get to finish after SIGTERM (10)
    METRICS_PORT                    /metrics, /healthz, /readyz (9104; 0 = off)
plus the platform settings (KAFKA_BOOTSTRAP_SERVERS, SMARTCITY_TOPIC_PREFIX, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smartcity.settings import PlatformSettings, SettingsError, env_float, env_int, env_str

SERVICE_NAME = "gateway"
DEFAULT_METRICS_PORT = 9104
DEV_TOKENS_FILE = Path(__file__).with_name("dev_tokens.yaml")


@dataclass(frozen=True)
class GatewayConfig:
    platform: PlatformSettings
    address: str = "127.0.0.1:50051"
    tokens_file: Path = DEV_TOKENS_FILE
    tls_cert_file: str = ""
    tls_key_file: str = ""
    max_receive_bytes: int = 65536
    max_send_bytes: int = 16 * 1024 * 1024
    rate_limit_rps: float = 100.0
    rate_limit_burst: float = 200.0
    command_timeout_s: float = 10.0
    watch_queue_size: int = 1000
    max_streams_per_client: int = 20
    snapshot_interval_s: float = 2.0
    snapshot_min_interval_s: float = 1.0
    snapshot_cache_s: float = 1.0
    max_resolved_incidents: int = 10000
    max_events_per_request: int = 1000
    shutdown_grace_s: float = 10.0

    @property
    def uses_dev_tokens(self) -> bool:
        return self.tokens_file == DEV_TOKENS_FILE

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file and self.tls_key_file)

    @classmethod
    def from_env(cls) -> GatewayConfig:
        config = cls(
            platform=PlatformSettings.from_env(SERVICE_NAME, DEFAULT_METRICS_PORT),
            address=env_str("GATEWAY_ADDRESS", "127.0.0.1:50051"),
            tokens_file=Path(env_str("GATEWAY_TOKENS_FILE", "") or DEV_TOKENS_FILE),
            tls_cert_file=env_str("GATEWAY_TLS_CERT_FILE", ""),
            tls_key_file=env_str("GATEWAY_TLS_KEY_FILE", ""),
            max_receive_bytes=env_int("GATEWAY_MAX_RECEIVE_BYTES", 65536),
            max_send_bytes=env_int("GATEWAY_MAX_SEND_BYTES", 16 * 1024 * 1024),
            rate_limit_rps=env_float("GATEWAY_RATE_LIMIT_RPS", 100.0),
            rate_limit_burst=env_float("GATEWAY_RATE_LIMIT_BURST", 200.0),
            command_timeout_s=env_float("GATEWAY_COMMAND_TIMEOUT_S", 10.0),
            watch_queue_size=env_int("GATEWAY_WATCH_QUEUE_SIZE", 1000),
            max_streams_per_client=env_int("GATEWAY_MAX_STREAMS_PER_CLIENT", 20),
            snapshot_interval_s=env_float("GATEWAY_SNAPSHOT_INTERVAL_S", 2.0),
            snapshot_min_interval_s=env_float("GATEWAY_SNAPSHOT_MIN_INTERVAL_S", 1.0),
            snapshot_cache_s=env_float("GATEWAY_SNAPSHOT_CACHE_S", 1.0),
            max_resolved_incidents=env_int("GATEWAY_MAX_RESOLVED_INCIDENTS", 10000),
            max_events_per_request=env_int("GATEWAY_MAX_EVENTS_PER_REQUEST", 1000),
            shutdown_grace_s=env_float("GATEWAY_SHUTDOWN_GRACE_S", 10.0),
        )
        config.check()
        return config

    def check(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise SettingsError("set both GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE, or neither")
        positive = {
            "GATEWAY_MAX_RECEIVE_BYTES": self.max_receive_bytes,
            "GATEWAY_RATE_LIMIT_RPS": self.rate_limit_rps,
            "GATEWAY_RATE_LIMIT_BURST": self.rate_limit_burst,
            "GATEWAY_COMMAND_TIMEOUT_S": self.command_timeout_s,
            "GATEWAY_WATCH_QUEUE_SIZE": self.watch_queue_size,
            "GATEWAY_MAX_STREAMS_PER_CLIENT": self.max_streams_per_client,
            "GATEWAY_SNAPSHOT_MIN_INTERVAL_S": self.snapshot_min_interval_s,
        }
        for name, value in positive.items():
            if value <= 0:
                raise SettingsError(f"{name} must be > 0, got {value}")
        if self.snapshot_interval_s < self.snapshot_min_interval_s:
            raise SettingsError("GATEWAY_SNAPSHOT_INTERVAL_S is below GATEWAY_SNAPSHOT_MIN_INTERVAL_S")
