"""aiokafka producers and consumers configured the platform's way.

Producers are idempotent with acks=all (ARCHITECTURE.md, Guarantees); consumers commit only
after processing (at-least-once). Every service gets its clients here instead of wiring its own.

`client_security` is the one place that turns the KAFKA_SECURITY_* / KAFKA_SASL_* /
KAFKA_SSL_* settings into client arguments: producers, consumers, admin clients
(smartcity.topics) and the Faust app (smartcity.streams) all take theirs from it.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, errors
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError

from smartcity.partitioning import KeyPartitioner
from smartcity.settings import KafkaSecurity, PlatformSettings


def client_security(settings: PlatformSettings | KafkaSecurity) -> dict[str, Any]:
    """aiokafka keyword arguments (producer, consumer, admin client) for the settings' security.

    Empty for PLAINTEXT, so plaintext clients are built exactly as before. With TLS, an SSL
    context that verifies the broker against KAFKA_SSL_CAFILE (the system CAs when unset) and
    presents KAFKA_SSL_CERTFILE/KEYFILE when given (mutual TLS).
    """
    security = settings.kafka_security if isinstance(settings, PlatformSettings) else settings
    if security.protocol == "PLAINTEXT":
        return {}
    kwargs: dict[str, Any] = {"security_protocol": security.protocol}
    if security.uses_ssl:
        context = ssl.create_default_context(cafile=security.ssl_cafile or None)
        if security.ssl_certfile:
            context.load_cert_chain(security.ssl_certfile, security.ssl_keyfile)
        kwargs["ssl_context"] = context
    if security.uses_sasl:
        kwargs |= {
            "sasl_mechanism": security.sasl_mechanism,
            "sasl_plain_username": security.sasl_username,
            "sasl_plain_password": security.sasl_password,
        }
    return kwargs


def producer_config(settings: PlatformSettings) -> dict[str, Any]:
    return client_security(settings) | {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": settings.service_name,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "compression_type": None,
        "partitioner": KeyPartitioner(),
    }


def make_producer(settings: PlatformSettings, **overrides: Any) -> AIOKafkaProducer:
    """An idempotent, acks=all producer (not yet started)."""
    return AIOKafkaProducer(**(producer_config(settings) | overrides))


def make_consumer(settings: PlatformSettings, *topics: str, group_id: str | None = None,
                  **overrides: Any) -> AIOKafkaConsumer:
    """A consumer of catalogue topics (full names) with manual commits (not yet started)."""
    config: dict[str, Any] = client_security(settings) | {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": settings.service_name,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
    }
    return AIOKafkaConsumer(*topics, **(config | overrides))


class KafkaAuthenticationError(RuntimeError):
    """The broker refused the client's credentials or TLS setup: retrying will not help."""


_FATAL = (errors.SaslAuthenticationFailed, errors.AuthenticationFailedError,
          errors.UnsupportedSaslMechanismError, errors.IllegalSaslStateError, ssl.SSLError)


async def authentication_error(bootstrap: str, security: dict[str, Any]) -> KafkaAuthenticationError | None:
    """Why a secured client could not bootstrap, when it is its credentials or TLS.

    aiokafka logs a failed SASL handshake and reports only "Unable to bootstrap"; one direct
    connection to the first broker shows the real cause. None when it is not about security
    (the broker is down or still starting). The message names the user, never the password.
    """
    if not security:
        return None
    host, _, port = bootstrap.split(",", maxsplit=1)[0].strip().rpartition(":")
    try:
        conn = await create_conn(host or "127.0.0.1", int(port), request_timeout_ms=5000, **security)
    except _FATAL as exc:
        user = security.get("sasl_plain_username")
        who = f" as {user!r} ({security.get('sasl_mechanism')})" if user else ""
        return KafkaAuthenticationError(
            f"Kafka at {bootstrap} refused the connection{who} over {security['security_protocol']}: "
            f"{exc}. Check KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD(_FILE) / KAFKA_SSL_CAFILE.")
    except (TimeoutError, OSError, KafkaError):
        return None
    conn.close()
    return None


async def wait_for_broker(bootstrap: str | PlatformSettings, timeout_s: float = 60.0) -> None:
    """Waits until the cluster answers a metadata request, or raises TimeoutError.

    Given settings, it connects with their security (a bare bootstrap string means plaintext).
    Refused credentials or TLS raise KafkaAuthenticationError at once: retrying a wrong
    password only waits for nothing.
    """
    security = client_security(bootstrap) if isinstance(bootstrap, PlatformSettings) else {}
    if isinstance(bootstrap, PlatformSettings):
        bootstrap = bootstrap.kafka_bootstrap
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        probe = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000, **security)
        try:
            await probe.start()
            return
        except (KafkaConnectionError, KafkaError, OSError) as exc:
            last_error = exc
            refused = await authentication_error(bootstrap, security)
            if refused is not None:
                raise refused from exc
            await asyncio.sleep(0.5)
        finally:
            await probe.stop()
    raise TimeoutError(f"Kafka at {bootstrap} did not answer within {timeout_s:.0f}s: {last_error}")
