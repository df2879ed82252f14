"""Settings from the environment with local defaults (12-factor).

Every service reads the same names, so one ConfigMap or one shell export configures them all.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCAL_BOOTSTRAP = "127.0.0.1:9092"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


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


_READERS: dict[str, Callable[[str, Any], Any]] = {
    "str": env_str, "int": env_int, "float": env_float, "bool": env_bool,
}


def env_fields(cls: type, prefix: str, *, skip: Collection[str] = ()) -> dict[str, Any]:
    """The fields of the dataclass `cls`, each read from the variable `<prefix><FIELD NAME>`
    (upper case) by its type (str, int, float or bool), its default the field's own: the
    keyword arguments of `cls(...)`, to which a `from_env` adds its checks. Fields in `skip`,
    and fields of other types, are left to the caller."""
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):
        reader = _READERS.get(spec.type if isinstance(spec.type, str) else spec.type.__name__)
        if spec.name in skip or reader is None or not spec.init:
            continue
        if spec.default is not dataclasses.MISSING:
            default = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            default = spec.default_factory()
        else:
            raise TypeError(f"{cls.__name__}.{spec.name} has no default to fall back on")
        values[spec.name] = reader(prefix + spec.name.upper(), default)
    return values


def _env_file(name: str) -> str:
    """A path from the environment that must name an existing file ("" when unset)."""
    raw = os.environ.get(name, "").strip()
    if raw and not Path(raw).is_file():
        raise SettingsError(f"{name}={raw!r}: no such file")
    return raw


@dataclass(frozen=True)
class KafkaSecurity:
    """How clients authenticate to Kafka and encrypt the connection (see PlatformSettings).

    The password never appears in repr() (nor in logs that print settings)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in {"SASL_PLAINTEXT", "SASL_SSL"}

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in {"SSL", "SASL_SSL"}

    def __post_init__(self) -> None:
        if self.protocol not in SECURITY_PROTOCOLS:
            raise SettingsError(f"KAFKA_SECURITY_PROTOCOL={self.protocol!r} is not one of "
                                f"{', '.join(SECURITY_PROTOCOLS)}")
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise SettingsError(f"KAFKA_SASL_MECHANISM={self.sasl_mechanism!r} is not one of "
                                f"{', '.join(SASL_MECHANISMS)}")
        if self.uses_sasl and not self.sasl_username:
            raise SettingsError("KAFKA_SASL_USERNAME is required with "
                                f"KAFKA_SECURITY_PROTOCOL={self.protocol}")
        if self.uses_sasl and not self.sasl_password:
            raise SettingsError("KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE) is required with "
                                f"KAFKA_SECURITY_PROTOCOL={self.protocol}")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            raise SettingsError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together (mutual TLS)")
        if (self.ssl_cafile or self.ssl_certfile) and not self.uses_ssl:
            raise SettingsError(f"KAFKA_SSL_CAFILE/KAFKA_SSL_CERTFILE are set but KAFKA_SECURITY_PROTOCOL="
                                f"{self.protocol} does not use TLS (SSL or SASL_SSL)")

    @classmethod
    def from_env(cls) -> KafkaSecurity:
        protocol = env_str("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").strip().upper() or "PLAINTEXT"
        password = os.environ.get("KAFKA_SASL_PASSWORD", "")
        password_file = _env_file("KAFKA_SASL_PASSWORD_FILE")
        if password and password_file:
            raise SettingsError("set KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both")
        if password_file:
            # A mounted Secret: the whole file is the password, a trailing newline is not.
            password = Path(password_file).read_text().rstrip("\r\n")
        return cls(
            protocol=protocol,
            sasl_mechanism=env_str("KAFKA_SASL_MECHANISM", "").strip().upper() or "SCRAM-SHA-512",
            sasl_username=env_str("KAFKA_SASL_USERNAME", "").strip(),
            sasl_password=password,
            ssl_cafile=_env_file("KAFKA_SSL_CAFILE"),
            ssl_certfile=_env_file("KAFKA_SSL_CERTFILE"),
            ssl_keyfile=_env_file("KAFKA_SSL_KEYFILE"),
        )


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

    Kafka security (every client: producers, consumers, admin, the Faust app; see
    smartcity.kafka.client_security). Unset = PLAINTEXT without authentication, as before.
    KAFKA_SECURITY_PROTOCOL   PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL
    KAFKA_SASL_MECHANISM      SCRAM-SHA-512 (default), SCRAM-SHA-256 or PLAIN
    KAFKA_SASL_USERNAME       required with SASL_*
    KAFKA_SASL_PASSWORD       required with SASL_* unless KAFKA_SASL_PASSWORD_FILE names a file
                              holding it (a mounted Secret); never logged, not in repr()
    KAFKA_SSL_CAFILE          PEM CA bundle the brokers' certificates are checked against
                              (default the system's); SSL and SASL_SSL only
    KAFKA_SSL_CERTFILE        client certificate (PEM) for mutual TLS, with KAFKA_SSL_KEYFILE
    KAFKA_SSL_KEYFILE         its private key (PEM, unencrypted)
    Misconfigurations (unknown protocol or mechanism, SASL without credentials, a file that
    does not exist) raise SettingsError naming the variable.
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
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
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
            kafka_security=KafkaSecurity.from_env(),
        )

    @property
    def group_id(self) -> str:
        """Consumer group (and Faust app id) of this service, isolated by the topic prefix."""
        return f"{self.topic_prefix}{self.service_name}"
