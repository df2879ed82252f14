"""Client identifiers: keyed hashing of MAC addresses at the edge, and spotting raw MACs.

A raw MAC is personal data (it follows a phone from site to site). The collector hashes it with
HMAC-SHA256 under a secret salt before anything leaves the edge, so the platform can count
distinct users without being able to tell who they are; rotating the salt unlinks old data.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re

from smartcity.settings import env_str

SALT_ENV = "WIFI_CLIENT_HASH_SALT"
# Only for local runs and tests: anyone can read it here, so hashes made with it protect nothing.
DEV_SALT = "dev-only-insecure-wifi-salt-do-not-use-in-production"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAC_SEPARATED = re.compile(r"^[0-9a-fA-F]{2}([:\-. ]?)(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}$")
_MAC_CISCO = re.compile(r"^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$")
_MAC_BARE = re.compile(r"^[0-9a-fA-F]{12}$")

log = logging.getLogger(__name__)


def normalize_mac(mac: str) -> str:
    """`AA-BB-CC-DD-EE-FF`, `aabb.ccdd.eeff`, `AABBCCDDEEFF` → `aa:bb:cc:dd:ee:ff`."""
    digits = re.sub(r"[^0-9a-fA-F]", "", mac)
    if len(digits) != 12 or not looks_like_mac(mac):
        raise ValueError("not a MAC address")  # never echo the value: it may be personal data
    digits = digits.lower()
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def looks_like_mac(value: str) -> bool:
    """True for the usual spellings of a 48-bit MAC address (what must never travel raw)."""
    text = value.strip()
    return bool(_MAC_SEPARATED.match(text) or _MAC_CISCO.match(text) or _MAC_BARE.match(text))


_MAC_ANYWHERE = re.compile(
    r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}[:\-]){5}[0-9A-Fa-f]{2}(?![0-9A-Fa-f])"
    r"|(?<![0-9A-Fa-f.])[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?![0-9A-Fa-f])"
    r"|(?<![0-9A-Fa-f])[0-9A-Fa-f]{12}(?![0-9A-Fa-f])"
)


def redact_macs(text: str) -> str:
    """The text with anything spelled like a MAC address replaced (for error messages, logs)."""
    return _MAC_ANYWHERE.sub("<mac>", text)


def client_hash_problem(value: str) -> str | None:
    """Why a ClientSession's client_hash is unacceptable, or None. Never quotes the value."""
    if looks_like_mac(value):
        return "client_hash looks like a raw MAC address (it must be hashed at the edge)"
    if not _HEX64.match(value):
        return "client_hash is not a lowercase hex HMAC-SHA256 (64 characters)"
    return None


class ClientHasher:
    """HMAC-SHA256 of the normalized MAC under a secret salt, as lowercase hex."""

    def __init__(self, salt: str | bytes) -> None:
        key = salt.encode() if isinstance(salt, str) else salt
        if not key:
            raise ValueError(f"{SALT_ENV} must not be empty")
        self._key = key

    @classmethod
    def from_env(cls) -> ClientHasher:
        salt = env_str(SALT_ENV, "")
        if not salt:
            log.warning("%s is not set: using the development salt (not for production)", SALT_ENV)
            salt = DEV_SALT
        return cls(salt)

    def hash(self, mac: str) -> str:
        return hmac.new(self._key, normalize_mac(mac).encode(), hashlib.sha256).hexdigest()
