"""Kafka record headers as one type: a list of (str, bytes) pairs, whatever the client gave.

aiokafka hands headers as a sequence of pairs, Faust as a mapping or a sequence, either with
None values; everything past the wire reads `headers_of(message)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Headers = list[tuple[str, bytes]]


def headers_of(message: Any) -> Headers:
    """The headers of a consumed record (aiokafka's or Faust's), None values as b""."""
    raw = getattr(message, "headers", None) or []
    items = raw.items() if isinstance(raw, Mapping) else raw
    return [(str(k), bytes(v) if v is not None else b"") for k, v in items]


def header_value(headers: Headers, name: str) -> bytes | None:
    """The last value of header `name`, None when absent."""
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found
