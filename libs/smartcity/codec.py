"""Protobuf (de)serialisation of the platform's events, for Faust and plain aiokafka alike.

Kafka carries raw bytes: services decode with `ProtoCodec.decode`, which raises `DecodeError`
with a reason a human can act on; the caller sends the message to its dead-letter topic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Generic, TypeVar

from google.protobuf.message import DecodeError as _ProtobufDecodeError
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

M = TypeVar("M", bound=Message)

Validator = Callable[[M], None]


class DecodeError(ValueError):
    """Bytes that are not a valid event of the expected type."""


class ProtoCodec(Generic[M]):
    """Encodes and decodes one message type, optionally validating what it decodes.

    A validator raises ValueError for a message that parsed but makes no sense (proto3 accepts
    many byte strings, so parsing alone is no proof of a well-formed event).
    """

    def __init__(self, message_type: type[M], validator: Validator[M] | None = None) -> None:
        self.message_type = message_type
        self._validator = validator

    @property
    def type_name(self) -> str:
        return str(self.message_type.DESCRIPTOR.full_name)

    def encode(self, message: M) -> bytes:
        if not isinstance(message, self.message_type):
            raise TypeError(f"expected {self.type_name}, got {type(message).__name__}")
        return message.SerializeToString(deterministic=True)

    def decode(self, data: bytes | None) -> M:
        if data is None:
            raise DecodeError(f"empty value (tombstone) where a {self.type_name} was expected")
        message = self.message_type()
        try:
            message.ParseFromString(data)
        except (_ProtobufDecodeError, RuntimeError, ValueError) as exc:
            raise DecodeError(f"not a {self.type_name}: {exc}") from exc
        self.check(message)
        return message

    def check(self, message: M) -> None:
        """Validates a message decoded elsewhere (an item of a batch message): DecodeError."""
        if self._validator is not None:
            try:
                self._validator(message)
            except ValueError as exc:
                raise DecodeError(f"invalid {self.type_name}: {exc}") from exc


def require_fields(*names: str) -> Validator[Message]:
    """A validator that rejects messages missing any of the named fields (empty = missing)."""

    def validate(message: Message) -> None:
        missing = [n for n in names if not _is_set(message, n)]
        if missing:
            raise ValueError("missing required field(s): " + ", ".join(missing))

    return validate


def _is_set(message: Message, name: str) -> bool:
    field = message.DESCRIPTOR.fields_by_name[name]
    if field.message_type is not None and not getattr(field, "is_repeated", False):
        return message.HasField(name)
    return bool(getattr(message, name))


def to_timestamp(seconds: float) -> Timestamp:
    """Seconds since the epoch (domain time) to a protobuf Timestamp."""
    stamp = Timestamp()
    set_timestamp(stamp, seconds)
    return stamp


def set_timestamp(stamp: Timestamp, seconds: float) -> None:
    """Sets a Timestamp (e.g. a field of a message kept and changed in place) to these seconds."""
    whole = math.floor(seconds)
    stamp.seconds, stamp.nanos = whole, round((seconds - whole) * 1e9) % 1_000_000_000


def from_timestamp(stamp: Timestamp) -> float:
    """A protobuf Timestamp to seconds since the epoch (0.0 when unset)."""
    return stamp.seconds + stamp.nanos / 1e9
