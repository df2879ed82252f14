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
    GATEWAY_DATA_KEY_FOLLOW_WAIT_MS longest the broker holds a fetch of other replicas' data keys
                                    to gather several (20; 0 = one fetch per key)
    GATEWAY_SNAPSHOT_INTERVAL_S     default WatchCitySnapshot interval (2)
    GATEWAY_SNAPSHOT_MIN_INTERVAL_S shortest allowed WatchCitySnapshot interval (1)
    GATEWAY_SNAPSHOT_CACHE_S        reuse a computed snapshot while the views are unchanged, up to (1)
    GATEWAY_MAX_RESOLVED_INCIDENTS  resolved incidents kept in memory (10000)
    GATEWAY_STORE_PATH              the history store's SQLite file, one per process
                                    (.local/gateway/history.sqlite3)
    GATEWAY_STORE_CACHE_MIB         the store's page cache (32; readers get a quarter)
    GATEWAY_STORE_CHECK_AT_OPEN_MIB a store up to this size is page-checked before it is used;
                                    a larger one while the gateway serves (256)
    GATEWAY_REBUILD_WORKERS         worker processes that rebuild the store from the beginning of
                                    the request topics, a share of the partitions each (2; 0 = the
                                    gateway process reads them itself)
    GATEWAY_SHUTDOWN_GRACE_S        time in-flight calls get to finish after SIGTERM (10)
    GATEWAY_MAX_CONNECTION_AGE_S    a connection older than this gets GOAWAY, so clients reconnect
                                    and long watch streams spread over replicas added since (300)
    GATEWAY_MAX_CONNECTION_AGE_GRACE_S  time its calls then get to finish before they are cut with
                                    UNAVAILABLE (clients re-subscribe) (30)
    GATEWAY_KEEPALIVE_TIME_S        ping a connection idle this long, to find dead peers (60) ...
    GATEWAY_KEEPALIVE_TIMEOUT_S     ... and close it when the ping is not answered within (20)
    GATEWAY_KEEPALIVE_MIN_CLIENT_PING_S  shortest interval a client may ping at (10)
    METRICS_PORT                    /metrics, /healthz, /readyz (9104; 0 = off)
    EVENT_LOOP                      uvloop or asyncio (uvloop: see smartcity.event_loop)
plus the platform settings (KAFKA_BOOTSTRAP_SERVERS, SMARTCITY_TOPIC_PREFIX, ...) and the
personal-data ones (PERSONAL_DATA_KEYRING, PERSONAL_DATA_SUBJECT_SALT_FILE, ...: see
smartcity.personal_data.config and docs/personal-data.md): without a usable KEK keyring and
subject salt the gateway does not start.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from gateway.core.api import ApiLimits
from gateway.core.views import Views
from smartcity.event_loop import DEFAULT_EVENT_LOOP, event_loop_from_env
from smartcity.personal_data.config import PersonalDataSettings
from smartcity.settings import PlatformSettings, SettingsError, env_float, env_int, env_str

SERVICE_NAME = "gateway"
DEFAULT_METRICS_PORT = 9104
DEV_TOKENS_FILE = Path(__file__).with_name("dev_tokens.yaml")


@dataclass(frozen=True)
class GatewayConfig:
    """The gateway's settings. Each default is written once: here, or (for the knobs the core
    reads) in `ApiLimits` and `Views`, which the core's unit tests build without a config."""

    platform: PlatformSettings
    personal_data: PersonalDataSettings
    address: str = "127.0.0.1:50051"
    tokens_file: Path = DEV_TOKENS_FILE
    tls_cert_file: str = ""
    tls_key_file: str = ""
    max_receive_bytes: int = 65536
    max_send_bytes: int = 16 * 1024 * 1024
    rate_limit_rps: float = 100.0
    rate_limit_burst: float = 200.0
    command_timeout_s: float = ApiLimits.command_timeout_s
    watch_queue_size: int = 1000
    max_streams_per_client: int = ApiLimits.max_streams_per_client
    snapshot_interval_s: float = ApiLimits.snapshot_interval_s
    snapshot_min_interval_s: float = ApiLimits.snapshot_min_interval_s
    snapshot_cache_s: float = ApiLimits.snapshot_cache_s
    max_resolved_incidents: int = Views.max_resolved_incidents
    store_path: Path = Path(".local/gateway/history.sqlite3")
    store_cache_mib: int = 32
    store_check_at_open_mib: int = 256
    rebuild_workers: int = 2
    # A replica's own data keys are known as it publishes them; the follower only learns other
    # replicas' keys, and one fetch per key (200/s at 200 submits/s) costs more than the rest of
    # the follower. A key reaches the other replicas up to this much later.
    data_key_follow_wait_ms: int = 20
    shutdown_grace_s: float = 10.0
    # Connection lifetime: without it a watch stream stays on the replica it first reached, and
    # replicas added by a scale-out get no watchers. gRPC core adds +-10 % jitter to the age.
    max_connection_age_s: float = 300.0
    max_connection_age_grace_s: float = 30.0
    keepalive_time_s: float = 60.0
    keepalive_timeout_s: float = 20.0
    keepalive_min_client_ping_s: float = 10.0
    # The event loop the process runs on (smartcity.event_loop: uvloop, or asyncio's own).
    event_loop: str = DEFAULT_EVENT_LOOP

    @property
    def uses_dev_tokens(self) -> bool:
        return self.tokens_file == DEV_TOKENS_FILE

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file and self.tls_key_file)

    def grpc_options(self) -> list[tuple[str, int]]:
        """The gRPC server's channel arguments: message sizes, connection age, keepalive."""
        return [
            ("grpc.max_receive_message_length", self.max_receive_bytes),
            ("grpc.max_send_message_length", self.max_send_bytes),
            ("grpc.so_reuseport", 0),
            ("grpc.max_connection_age_ms", _ms(self.max_connection_age_s)),
            ("grpc.max_connection_age_grace_ms", _ms(self.max_connection_age_grace_s)),
            ("grpc.keepalive_time_ms", _ms(self.keepalive_time_s)),
            ("grpc.keepalive_timeout_ms", _ms(self.keepalive_timeout_s)),
            # Clients that keep their own connection alive (idle watchers) may ping, not too often.
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", _ms(self.keepalive_min_client_ping_s)),
        ]

    def api_limits(self) -> ApiLimits:
        """The limits the API enforces, from these settings (the others keep ApiLimits' defaults)."""
        mine = {f.name for f in fields(self)}
        return ApiLimits(**{f.name: getattr(self, f.name) for f in fields(ApiLimits) if f.name in mine})

    @classmethod
    def from_env(cls) -> GatewayConfig:
        defaults = {f.name: f.default for f in fields(cls)}
        config = cls(
            platform=PlatformSettings.from_env(SERVICE_NAME, DEFAULT_METRICS_PORT),
            personal_data=PersonalDataSettings.from_env(),
            # Unset or empty: the development tokens.
            tokens_file=Path(env_str("GATEWAY_TOKENS_FILE", "") or DEV_TOKENS_FILE),
            **{name: _read(variable, defaults[name]) for name, variable in ENV_VARIABLES.items()},
            event_loop=event_loop_from_env(cls.event_loop),
        )
        config.check()
        return config

    def check(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise SettingsError("set both GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE, or neither")
        positive = (
            "max_receive_bytes",
            "rate_limit_rps",
            "rate_limit_burst",
            "command_timeout_s",
            "watch_queue_size",
            "max_streams_per_client",
            "snapshot_min_interval_s",
            "max_connection_age_s",
            "max_connection_age_grace_s",
            "keepalive_time_s",
            "keepalive_timeout_s",
            "keepalive_min_client_ping_s",
            "store_cache_mib",
        )
        for name in positive:
            value = getattr(self, name)
            if value <= 0:
                raise SettingsError(f"{ENV_VARIABLES[name]} must be > 0, got {value}")
        if self.data_key_follow_wait_ms < 0:
            raise SettingsError(
                f"GATEWAY_DATA_KEY_FOLLOW_WAIT_MS must be >= 0, got {self.data_key_follow_wait_ms}"
            )
        if self.rebuild_workers < 0:
            raise SettingsError(f"GATEWAY_REBUILD_WORKERS must be >= 0, got {self.rebuild_workers}")
        if self.store_path in (Path(""), Path(".")) or self.store_path.is_dir():
            raise SettingsError(f"GATEWAY_STORE_PATH must name a file, got {str(self.store_path)!r}")
        if self.snapshot_interval_s < self.snapshot_min_interval_s:
            raise SettingsError("GATEWAY_SNAPSHOT_INTERVAL_S is below GATEWAY_SNAPSHOT_MIN_INTERVAL_S")
        # The secrets are read now, so a missing or malformed one stops the process at once.
        self.personal_data.keyring()
        self.personal_data.hasher()


# Each setting's variable, written once (GATEWAY_TOKENS_FILE is read apart: empty means the
# development tokens); the parser follows the type of the field's default.
ENV_VARIABLES = {
    "address": "GATEWAY_ADDRESS",
    "tls_cert_file": "GATEWAY_TLS_CERT_FILE",
    "tls_key_file": "GATEWAY_TLS_KEY_FILE",
    "max_receive_bytes": "GATEWAY_MAX_RECEIVE_BYTES",
    "max_send_bytes": "GATEWAY_MAX_SEND_BYTES",
    "rate_limit_rps": "GATEWAY_RATE_LIMIT_RPS",
    "rate_limit_burst": "GATEWAY_RATE_LIMIT_BURST",
    "command_timeout_s": "GATEWAY_COMMAND_TIMEOUT_S",
    "watch_queue_size": "GATEWAY_WATCH_QUEUE_SIZE",
    "max_streams_per_client": "GATEWAY_MAX_STREAMS_PER_CLIENT",
    "snapshot_interval_s": "GATEWAY_SNAPSHOT_INTERVAL_S",
    "snapshot_min_interval_s": "GATEWAY_SNAPSHOT_MIN_INTERVAL_S",
    "snapshot_cache_s": "GATEWAY_SNAPSHOT_CACHE_S",
    "max_resolved_incidents": "GATEWAY_MAX_RESOLVED_INCIDENTS",
    "store_path": "GATEWAY_STORE_PATH",
    "store_cache_mib": "GATEWAY_STORE_CACHE_MIB",
    "store_check_at_open_mib": "GATEWAY_STORE_CHECK_AT_OPEN_MIB",
    "rebuild_workers": "GATEWAY_REBUILD_WORKERS",
    "data_key_follow_wait_ms": "GATEWAY_DATA_KEY_FOLLOW_WAIT_MS",
    "shutdown_grace_s": "GATEWAY_SHUTDOWN_GRACE_S",
    "max_connection_age_s": "GATEWAY_MAX_CONNECTION_AGE_S",
    "max_connection_age_grace_s": "GATEWAY_MAX_CONNECTION_AGE_GRACE_S",
    "keepalive_time_s": "GATEWAY_KEEPALIVE_TIME_S",
    "keepalive_timeout_s": "GATEWAY_KEEPALIVE_TIMEOUT_S",
    "keepalive_min_client_ping_s": "GATEWAY_KEEPALIVE_MIN_CLIENT_PING_S",
}


def _read(variable: str, default: Any) -> Any:
    if isinstance(default, float):
        return env_float(variable, default)
    if isinstance(default, int):
        return env_int(variable, default)
    if isinstance(default, Path):
        return Path(env_str(variable, str(default)))
    return env_str(variable, default)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
