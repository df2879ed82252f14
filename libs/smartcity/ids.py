"""Identifiers shared across services."""

from __future__ import annotations

import uuid

_REQUEST_NAMESPACE = uuid.UUID("6f1c1d4e-3f7a-5b1e-9a55-70b1a1ba1a90")


def request_id_for(client_id: str, idempotency_key: str) -> str:
    """The request id of a submit, derived from who submitted it and their idempotency key.

    Deterministic so that a retried submit lands on the same Kafka partition as the original
    and the citizen-requests worker that owns it can deduplicate it.
    """
    if not idempotency_key:
        raise ValueError("an idempotency key is required to derive a request id")
    name = f"{client_id}\x1f{idempotency_key}"
    return "req-" + uuid.uuid5(_REQUEST_NAMESPACE, name).hex[:20]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"
