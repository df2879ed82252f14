"""What a dead letter from a topic holding personal data may keep of the original bytes.

The catalogue marks such topics (`personal_data:` in topics.yaml):
  contact     requests topics: contact details travel encrypted, but a bad record may hold a
              plaintext Reporter (an old or buggy producer). A record that still parses keeps
              everything except its Reporter fields, which are cleared; one that does not parse
              is withheld (its bytes may be anything).
  client-mac  wifi client sessions: a bad record may hold a raw MAC in any field. A record that
              parses keeps its fields except those spelled like a MAC address, which are
              blanked; one that does not parse is withheld.
A bad reading taken out of a batch message is judged as its own type (the dead letter carries
the reading alone); a batch that does not parse is withheld whole.
A withheld payload leaves the value empty; the headers still say why, and where the original
was (topic, partition, offset) while the source topic keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import symbol_database
from google.protobuf.message import DecodeError, Message

from smartcity.topics import TopicSpec, load_catalogue

REPORTER_TYPE = "smartcity.v1.Reporter"
BLANKED = "<redacted>"
# Anything spelled like a 48-bit MAC: six hex pairs (":" "-" "." " " or no separator), or the
# dotted form aabb.ccdd.eeff, anywhere in a string.
_MAC_LIKE = re.compile(
    r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[:\-. ]?){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])"
    r"|(?<![0-9A-Fa-f])[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?![0-9A-Fa-f])"
)
CONTACT = "contact"
CLIENT_MAC = "client-mac"


@dataclass(frozen=True)
class Payload:
    value: bytes | None
    # "" = the original bytes; "redacted" = parsed, Reporter fields cleared; "withheld".
    treatment: str


def spec_of(topic: str) -> TopicSpec | None:
    """The catalogue entry of a full topic name (any prefix), None when it is not listed."""
    for spec in load_catalogue().topics:
        if topic == spec.name or topic.endswith("." + spec.name):
            return spec
    return None


def dead_letter_payload(topic: str, value: bytes | None, value_type: str = "") -> Payload:
    """The value a dead letter of `topic` may carry. `value_type` names the protobuf type of
    `value` when it is not the topic's own (one reading out of a batch message)."""
    spec = spec_of(topic)
    kind = spec.personal_data if spec is not None else ""
    if value is None or not kind:
        return Payload(value, "")
    if spec is None or kind not in _REDACTORS:
        return Payload(None, "withheld")
    message = _parsed(value_type or spec.value, value)
    if message is None:
        return Payload(None, "withheld")
    _REDACTORS[kind](message)
    # Unknown fields could be anything (a newer producer's plaintext): drop them too.
    message.DiscardUnknownFields()
    return Payload(message.SerializeToString(deterministic=True), "redacted")


def _parsed(type_name: str, value: bytes) -> Message | None:
    message_class: Any = symbol_database.Default().GetSymbol(type_name)
    message: Message = message_class()
    try:
        message.ParseFromString(value)
    except (DecodeError, RuntimeError, ValueError):
        return None
    return message


def clear_reporters(message: Message) -> None:
    """Clears every plaintext Reporter anywhere inside a message (EncryptedContact stays)."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.full_name == REPORTER_TYPE:
            message.ClearField(field.name)
        elif field.message_type.GetOptions().map_entry:
            entries = value.values() if field.message_type.fields_by_name["value"].message_type else ()
            for item in entries:
                clear_reporters(item)
        elif getattr(field, "is_repeated", False):
            for item in value:
                clear_reporters(item)
        else:
            clear_reporters(value)


def blank_macs(message: Message) -> None:
    """Blanks every string field (anywhere inside a message) that holds something MAC-like."""
    for field, value in message.ListFields():
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                continue  # no map in the wifi contract; a map value would need its own walk
            for item in value if getattr(field, "is_repeated", False) else [value]:
                blank_macs(item)
        elif field.type == field.TYPE_STRING:
            if getattr(field, "is_repeated", False):
                value[:] = [BLANKED if _MAC_LIKE.search(v) else v for v in value]
            elif _MAC_LIKE.search(value):
                setattr(message, field.name, BLANKED)


_REDACTORS: dict[str, Callable[[Message], None]] = {CONTACT: clear_reporters, CLIENT_MAC: blank_macs}
