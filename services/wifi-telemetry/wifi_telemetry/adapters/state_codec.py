"""How the wifi state table's records are encoded in its changelog: MessagePack, and JSON read.

    write:  record (a dict) ─► MessagePack ─► changelog
    read:   changelog value ─┬─ first byte a MessagePack map (0x80-0x8f, 0xde, 0xdf) ─► MessagePack
                             └─ anything else (JSON text starts with an ASCII byte) ─► JSON

Why: every batch rewrites each changed site's record, its APs' states inside, and JSON was
the larger part of that write (floats printed as text, every field name quoted); MessagePack
encodes the same values in a quarter of the time and three quarters of the bytes, and a
restart decodes them faster too. The values come back as JSON gave them (dicts with text keys,
lists, floats, ints, text, booleans, None), so the processor reads either. Records written
before, as JSON, are still read: a deployment upgrades in place, its old records replaced as
their sites are written again.
"""

from __future__ import annotations

from typing import Any

import faust
import msgpack
from faust.serializers import codecs

# What the changelog held before: Faust's own JSON codec, to read those records as it did.
_JSON = codecs.get_codec("json")


def is_msgpack_map(data: bytes) -> bool:
    """Whether `data` starts like a MessagePack map (a fixmap, map 16 or map 32): never the
    first byte of JSON text, which is ASCII."""
    first = data[0] if data else 0
    return 0x80 <= first <= 0x8F or first in (0xDE, 0xDF)


class StateCodec(codecs.Codec):  # type: ignore[misc]  # Faust is not type-checked
    """A Faust codec: MessagePack for the records written, either layout for those read."""

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, dict):  # the reader tells the layouts apart by a map's first byte
            raise TypeError(f"a state record is a dict, not {type(obj).__name__}")
        packed: bytes = msgpack.packb(obj, use_bin_type=True)
        return packed

    def _loads(self, s: bytes) -> Any:
        if is_msgpack_map(s):
            return msgpack.unpackb(s, raw=False)
        return _JSON.loads(s)


STATE_CODEC = StateCodec()


def use_state_codec(table: faust.Table) -> None:
    """Makes `table` write and read its values with `STATE_CODEC`.

    Faust takes a table's serializer from its value type (none here: JSON), and gives it to the
    changelog topic it makes when the table is declared, which writes it into the schema the
    table was given: the codec set in that schema alone is overridden. So it is set on all
    three (the table, its changelog topic and their schema); the topic's clones (the
    recovery's) take theirs from those."""
    table.value_serializer = STATE_CODEC
    changelog = table.changelog_topic
    changelog.schema.update(value_serializer=STATE_CODEC)
    changelog.value_serializer = STATE_CODEC  # type: ignore[attr-defined]
