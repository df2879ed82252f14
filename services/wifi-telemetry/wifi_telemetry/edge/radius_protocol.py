"""RADIUS accounting on the wire (RFC 2865 packet format, RFC 2866 accounting, RFC 2869 extras).

Plain functions over bytes, no sockets: parse a datagram into a `Packet` (bounded: at most
4096 bytes, every attribute length checked), verify an Accounting-Request's authenticator
(MD5 over code+identifier+length+16 zero octets+attributes+shared secret), build the
Accounting-Response (code 5, authenticator MD5 over code+identifier+length+request
authenticator+attributes+secret), and read the accounting fields into an `AccountingRecord`.

A packet the server cannot use raises `RadiusError` whose `reason` is a short metric label
("too_short", "bad_length", "bad_attribute", "not_accounting", "bad_authenticator", ...). The
error text never quotes attribute values: Calling-Station-Id is a raw client MAC.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

MAX_PACKET_BYTES = 4096  # RFC 2865 §3: the largest packet a server has to accept
HEADER_BYTES = 20
CODE_ACCOUNTING_REQUEST = 4
CODE_ACCOUNTING_RESPONSE = 5

# Attribute types (RFC 2865, 2866, 2869).
USER_NAME = 1
NAS_IP_ADDRESS = 4
NAS_PORT = 5
CALLED_STATION_ID = 30
CALLING_STATION_ID = 31
NAS_IDENTIFIER = 32
ACCT_STATUS_TYPE = 40
ACCT_DELAY_TIME = 41
ACCT_INPUT_OCTETS = 42
ACCT_OUTPUT_OCTETS = 43
ACCT_SESSION_ID = 44
ACCT_SESSION_TIME = 46
ACCT_TERMINATE_CAUSE = 49
ACCT_INPUT_GIGAWORDS = 52
ACCT_OUTPUT_GIGAWORDS = 53
EVENT_TIMESTAMP = 55
MESSAGE_AUTHENTICATOR = 80

# Acct-Status-Type values (RFC 2866 §5.1, and Accounting-On/Off of the NAS itself).
START = 1
STOP = 2
INTERIM_UPDATE = 3
ACCOUNTING_ON = 7
ACCOUNTING_OFF = 8
STATUS_NAMES = {START: "start", STOP: "stop", INTERIM_UPDATE: "interim_update",
                ACCOUNTING_ON: "accounting_on", ACCOUNTING_OFF: "accounting_off"}


class RadiusError(ValueError):
    """A datagram that is not a usable Accounting-Request; `reason` is a metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Packet:
    code: int
    identifier: int
    authenticator: bytes
    attributes: tuple[tuple[int, bytes], ...]
    raw: bytes

    def first(self, attribute: int) -> bytes | None:
        return next((value for kind, value in self.attributes if kind == attribute), None)

    def text(self, attribute: int) -> str:
        value = self.first(attribute)
        return "" if value is None else value.decode("utf-8", "replace").strip("\x00").strip()

    def integer(self, attribute: int) -> int | None:
        value = self.first(attribute)
        if value is None:
            return None
        if len(value) != 4:
            raise RadiusError("bad_attribute", f"attribute {attribute} is {len(value)} octets, not 4")
        return int(struct.unpack("!I", value)[0])

    def nas_ip(self) -> str:
        value = self.first(NAS_IP_ADDRESS)
        return ".".join(str(octet) for octet in value) if value is not None and len(value) == 4 else ""


def parse_packet(data: bytes) -> Packet:
    """The packet in a datagram; RadiusError when it is truncated, oversized or malformed."""
    if len(data) < HEADER_BYTES:
        raise RadiusError("too_short", f"{len(data)} bytes, a RADIUS packet has at least {HEADER_BYTES}")
    if len(data) > MAX_PACKET_BYTES:
        raise RadiusError("too_long", f"{len(data)} bytes, more than {MAX_PACKET_BYTES}")
    code, identifier, length = struct.unpack("!BBH", data[:4])
    if not HEADER_BYTES <= length <= len(data):
        raise RadiusError("bad_length", f"length field {length} does not fit the {len(data)}-byte datagram")
    attributes: list[tuple[int, bytes]] = []
    offset = HEADER_BYTES
    # Octets past `length` are padding (RFC 2865 §3): ignored.
    while offset < length:
        if offset + 2 > length:
            raise RadiusError("bad_attribute", f"attribute header cut at octet {offset}")
        kind, size = data[offset], data[offset + 1]
        if size < 2 or offset + size > length:
            raise RadiusError("bad_attribute", f"attribute {kind} at octet {offset} has length {size}")
        attributes.append((kind, data[offset + 2:offset + size]))
        offset += size
    return Packet(code, identifier, data[4:20], tuple(attributes), data[:length])


# What names a person: a dead letter carries these values pseudonymised, never raw.
PERSONAL_ATTRIBUTES = (USER_NAME, CALLING_STATION_ID)


def redacted(packet: Packet, pseudonym: Callable[[bytes], bytes]) -> bytes:
    """The packet re-encoded with its personal attributes replaced by `pseudonym(value)` (its
    authenticator no longer matches: a dead letter to read, not a request to replay)."""
    body = b""
    for kind, value in packet.attributes:
        out = pseudonym(value)[:253] if kind in PERSONAL_ATTRIBUTES else value
        body += struct.pack("!BB", kind, len(out) + 2) + out
    head = struct.pack("!BBH", packet.code, packet.identifier, HEADER_BYTES + len(body))
    return head + packet.authenticator + body


def accounting_request_authenticator(packet_bytes: bytes, secret: bytes) -> bytes:
    """RFC 2866 §3: MD5(code+identifier+length+16 zero octets+attributes+secret)."""
    return hashlib.md5(packet_bytes[:4] + bytes(16) + packet_bytes[20:] + secret).digest()


def verify_accounting_request(packet: Packet, secret: bytes) -> None:
    """Raises RadiusError unless the packet is an Accounting-Request signed with `secret`."""
    if packet.code != CODE_ACCOUNTING_REQUEST:
        raise RadiusError("not_accounting", f"code {packet.code} is not Accounting-Request (4)")
    expected = accounting_request_authenticator(packet.raw, secret)
    if not hmac.compare_digest(expected, packet.authenticator):
        raise RadiusError("bad_authenticator", "Request Authenticator does not match the NAS's secret")
    message_authenticator = packet.first(MESSAGE_AUTHENTICATOR)
    if message_authenticator is not None:
        _verify_message_authenticator(packet, message_authenticator, secret)


def _verify_message_authenticator(packet: Packet, value: bytes, secret: bytes) -> None:
    """RFC 2869 §5.14 / RFC 3579 §3.2: HMAC-MD5 keyed with the secret over the packet with this
    attribute's value zeroed; in an Accounting-Request the Request Authenticator counts as 16
    zero octets too (it is computed afterwards, over the Message-Authenticator): what FreeRADIUS
    and its radclient send."""
    if len(value) != 16:
        raise RadiusError("bad_attribute", "Message-Authenticator is not 16 octets")
    zeroed = _with_zeroed_message_authenticator(packet.raw)
    expected = hmac.new(secret, zeroed[:4] + bytes(16) + zeroed[20:], hashlib.md5).digest()
    if not hmac.compare_digest(expected, value):
        raise RadiusError("bad_message_authenticator", "Message-Authenticator does not match")


def _with_zeroed_message_authenticator(raw: bytes) -> bytes:
    out = bytearray(raw)
    offset = HEADER_BYTES
    while offset < len(out):
        kind, size = out[offset], out[offset + 1]
        if kind == MESSAGE_AUTHENTICATOR:
            out[offset + 2:offset + size] = bytes(size - 2)
        offset += size
    return bytes(out)


def accounting_response(request: Packet, secret: bytes) -> bytes:
    """The Accounting-Response (no attributes) that acknowledges `request` (RFC 2866 §3)."""
    head = struct.pack("!BBH", CODE_ACCOUNTING_RESPONSE, request.identifier, HEADER_BYTES)
    authenticator = hashlib.md5(head + request.authenticator + secret).digest()
    return head + authenticator


def sign_accounting_request(identifier: int, attributes: list[tuple[int, bytes]], secret: bytes) -> bytes:
    """An Accounting-Request as a NAS would send it (benchmarks and tests build theirs here)."""
    body = b"".join(struct.pack("!BB", kind, len(value) + 2) + value for kind, value in attributes)
    head = struct.pack("!BBH", CODE_ACCOUNTING_REQUEST, identifier, HEADER_BYTES + len(body))
    authenticator = hashlib.md5(head + bytes(16) + body + secret).digest()
    return head + authenticator + body


@dataclass(frozen=True)
class AccountingRecord:
    """The fields of one Accounting-Request the platform uses (the MAC still raw: hash it next)."""

    status: int
    session_id: str
    calling_station_id: str
    called_station_id: str
    nas_identifier: str
    nas_ip: str
    input_bytes: int
    output_bytes: int
    session_time_s: int
    event_timestamp: int | None
    delay_time_s: int

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, f"status_{self.status}")


def accounting_record(packet: Packet) -> AccountingRecord:
    """Reads the accounting attributes; 64-bit totals from Octets + Gigawords (RFC 2869 §5.1)."""
    status = packet.integer(ACCT_STATUS_TYPE)
    if status is None:
        raise RadiusError("missing_attribute", "no Acct-Status-Type")

    def total(octets: int, gigawords: int) -> int:
        return ((packet.integer(gigawords) or 0) << 32) + (packet.integer(octets) or 0)

    return AccountingRecord(
        status=status, session_id=packet.text(ACCT_SESSION_ID),
        calling_station_id=packet.text(CALLING_STATION_ID), called_station_id=packet.text(CALLED_STATION_ID),
        nas_identifier=packet.text(NAS_IDENTIFIER), nas_ip=packet.nas_ip(),
        input_bytes=total(ACCT_INPUT_OCTETS, ACCT_INPUT_GIGAWORDS),
        output_bytes=total(ACCT_OUTPUT_OCTETS, ACCT_OUTPUT_GIGAWORDS),
        session_time_s=packet.integer(ACCT_SESSION_TIME) or 0,
        event_timestamp=packet.integer(EVENT_TIMESTAMP),
        delay_time_s=packet.integer(ACCT_DELAY_TIME) or 0,
    )


def event_time(record: AccountingRecord, received_at: float) -> float:
    """When it happened: Event-Timestamp when the NAS sent one, else arrival minus Acct-Delay-Time."""
    if record.event_timestamp:
        return float(record.event_timestamp)
    return received_at - record.delay_time_s


def event_id(nas_key: str, record: AccountingRecord) -> str:
    """Stable id of an accounting observation: a retransmission, even re-signed with a new
    Identifier after a NAS restart, maps to the same id (Acct-Session-Id + status + time)."""
    material = "\x1f".join((nas_key, record.session_id, str(record.status), str(record.session_time_s)))
    return hashlib.blake2b(material.encode(), digest_size=16).hexdigest()


_MAC_PREFIX = re.compile(r"^([0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\2){4}[0-9A-Fa-f]{2})")


def called_station_ap(called_station_id: str) -> str:
    """The AP part of Called-Station-Id, normalized: `AA:BB:CC:DD:EE:FF:ssid`,
    `AA-BB-CC-DD-EE-FF:ssid` → `aa-bb-cc-dd-ee-ff`; a name (`hotspot1:ssid`) → `hotspot1`."""
    text = called_station_id.strip()
    match = _MAC_PREFIX.match(text)
    if match:
        return match.group(1).lower().replace(":", "-")
    return text.split(":", 1)[0].strip()


def nas_lookup_keys(packet: Packet, source_ip: str) -> tuple[str, ...]:
    """The keys a NAS may be configured under, most specific first: NAS-Identifier,
    NAS-IP-Address, then the datagram's source address."""
    keys = [packet.text(NAS_IDENTIFIER), packet.nas_ip(), source_ip]
    return tuple(key for key in keys if key)
