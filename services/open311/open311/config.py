"""Configuration of the Open311 facade from the environment, with local defaults.

    OPEN311_ADDRESS                 HTTP listen address (127.0.0.1:8311)
    OPEN311_PUBLIC_URL              the endpoint's URL as citizens reach it, for discovery and
                                    the OpenAPI document (http://127.0.0.1:8311)
    OPEN311_SERVICES_FILE           the service catalogue (YAML); unset = the packaged one
    OPEN311_GATEWAY_ADDRESS         the gateway's gRPC address (127.0.0.1:50051)
    OPEN311_GATEWAY_TLS_CA_FILE     PEM CA to check the gateway's certificate with; unset = plain
    OPEN311_GATEWAY_TOKEN_FILE      file holding the facade's own read-only gateway token (public
                                    reads); unset = the gateway's public dev token
    OPEN311_READ_TIMEOUT_S          deadline of a gateway read (5)
    OPEN311_SUBMIT_TIMEOUT_S        deadline of a submit; past it the POST answers a token (10)
    OPEN311_MAX_BODY_BYTES          largest request body accepted, else 413 (65536)
    OPEN311_RATE_LIMIT_RPS          per caller (api_key, else client address) token bucket refill (20/s)
    OPEN311_RATE_LIMIT_BURST        ... and size (40)
    OPEN311_RATE_LIMIT_CALLERS      callers tracked at once, least recently seen evicted (10000)
    OPEN311_TRUST_FORWARDED_FOR     take the client address from X-Forwarded-For (behind an
                                    ingress that sets it) (false)
    OPEN311_CORS_ORIGINS            origins allowed to call from a browser, comma separated (*)
    OPEN311_MAX_RESULTS             most requests one GET /requests answers (1000, GeoReport's)
    OPEN311_MAX_SCAN_PAGES          gateway pages (of 1000) one GET /requests reads at most (20);
                                    each page after the first costs the caller one more request
    OPEN311_LIST_CACHE_S            a rendered public listing is served again for this long (1;
                                    0 = off); a POST through the same replica clears it
    OPEN311_UTC_OFFSET_H            the offset of the times it answers (7, WIB)
    OPEN311_SHUTDOWN_GRACE_S        time in-flight requests get after SIGTERM (10)
    METRICS_PORT                    /metrics, /healthz, /readyz (9105; 0 = off)
    EVENT_LOOP                      uvloop or asyncio (uvloop: see smartcity.event_loop)
plus the platform settings (LOG_LEVEL, LOG_FORMAT, OTEL_EXPORTER_OTLP_ENDPOINT, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from open311.core.catalogue import DEFAULT_SERVICES_FILE
from smartcity.event_loop import DEFAULT_EVENT_LOOP, event_loop_from_env
from smartcity.settings import PlatformSettings, SettingsError, env_fields, env_str

SERVICE_NAME = "open311"
DEFAULT_METRICS_PORT = 9105
# The gateway's development token of this facade (services/gateway dev_tokens.yaml): public,
# read-only, for laptops and tests only.
DEV_GATEWAY_TOKEN = "dev-open311-public"


@dataclass(frozen=True)
class Open311Config:
    platform: PlatformSettings
    address: str = "127.0.0.1:8311"
    public_url: str = "http://127.0.0.1:8311"
    services_file: Path = DEFAULT_SERVICES_FILE
    gateway_address: str = "127.0.0.1:50051"
    gateway_tls_ca_file: str = ""
    gateway_token_file: str = ""
    read_timeout_s: float = 5.0
    submit_timeout_s: float = 10.0
    max_body_bytes: int = 65536
    rate_limit_rps: float = 20.0
    rate_limit_burst: float = 40.0
    rate_limit_callers: int = 10000
    trust_forwarded_for: bool = False
    cors_origins: tuple[str, ...] = ("*",)
    max_results: int = 1000
    max_scan_pages: int = 20
    list_cache_s: float = 1.0
    utc_offset_h: float = 7.0
    shutdown_grace_s: float = 10.0
    event_loop: str = DEFAULT_EVENT_LOOP  # EVENT_LOOP, as every service names it

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.address.rpartition(":")
        return host or "127.0.0.1", int(port)

    def gateway_token(self) -> str:
        """The facade's own gateway token: the file's first line, else the dev token."""
        if not self.gateway_token_file:
            return DEV_GATEWAY_TOKEN
        try:
            token = Path(self.gateway_token_file).read_text().strip()
        except OSError as exc:
            raise SettingsError(f"OPEN311_GATEWAY_TOKEN_FILE={self.gateway_token_file}: {exc}") from exc
        if not token:
            raise SettingsError(f"OPEN311_GATEWAY_TOKEN_FILE={self.gateway_token_file} is empty")
        return token

    @classmethod
    def from_env(cls) -> Open311Config:
        d = cls  # the dataclass defaults: each one is written once, above
        origins = env_str("OPEN311_CORS_ORIGINS", ",".join(d.cors_origins))
        config = cls(
            platform=PlatformSettings.from_env(SERVICE_NAME, DEFAULT_METRICS_PORT),
            **env_fields(cls, "OPEN311_", skip={"event_loop"}),
            event_loop=event_loop_from_env(d.event_loop),
            services_file=Path(env_str("OPEN311_SERVICES_FILE", "") or d.services_file),
            cors_origins=tuple(o.strip() for o in origins.split(",") if o.strip()),
        )
        config.check()
        return config

    def check(self) -> None:
        try:
            self.host_port  # noqa: B018 - parsing is the check
        except ValueError:
            raise SettingsError(f"OPEN311_ADDRESS={self.address!r} is not host:port") from None
        if self.gateway_tls_ca_file and not Path(self.gateway_tls_ca_file).is_file():
            raise SettingsError(f"OPEN311_GATEWAY_TLS_CA_FILE={self.gateway_tls_ca_file} is not a file")
        positive = {
            "OPEN311_READ_TIMEOUT_S": self.read_timeout_s,
            "OPEN311_SUBMIT_TIMEOUT_S": self.submit_timeout_s,
            "OPEN311_MAX_BODY_BYTES": self.max_body_bytes,
            "OPEN311_RATE_LIMIT_RPS": self.rate_limit_rps,
            "OPEN311_RATE_LIMIT_CALLERS": self.rate_limit_callers,
            "OPEN311_MAX_RESULTS": self.max_results,
            "OPEN311_MAX_SCAN_PAGES": self.max_scan_pages,
        }
        for name, value in positive.items():
            if value <= 0:
                raise SettingsError(f"{name} must be > 0, got {value}")
        if self.list_cache_s < 0:
            raise SettingsError(f"OPEN311_LIST_CACHE_S must be >= 0, got {self.list_cache_s}")
        if self.rate_limit_burst < 1:
            raise SettingsError(f"OPEN311_RATE_LIMIT_BURST must be >= 1, got {self.rate_limit_burst}")
        if not self.cors_origins:
            raise SettingsError("OPEN311_CORS_ORIGINS names no origin (use * for any)")
