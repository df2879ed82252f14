"""AES-256-GCM envelope encryption: data keys wrapped by a KEK, contact details sealed by a data key.

    KEK (keyring) ──wraps──► data key (DataKeyRecord, requests.data-keys.v1, per subject)
                               └──seals──► Reporter → EncryptedContact (commands, events, state)

Associated data binds each ciphertext to where it belongs: a wrapped key to its subject, data
key id and KEK id; a sealed contact to its subject, data key id and request id, so neither can
be moved to another record and still open. Nonces are 96 random bits per encryption.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from smartcity.codec import to_timestamp
from smartcity.personal_data.keyring import Keyring, KeyringError
from smartcity.v1 import requests_pb2

ALGORITHM = "AES-256-GCM"
DATA_KEY_BYTES = 32
NONCE_BYTES = 12


class ContactUnreadable(ValueError):
    """A sealed contact that does not open with the key given (tampered, or the wrong key)."""


class WrongKekError(KeyringError):
    """A data key does not unwrap with the KEK of its id: the keyring holds another key."""


def _aad(kind: str, *parts: str) -> bytes:
    # Length-prefixed parts: ("ab", "c") and ("a", "bc") give different associated data.
    out = bytearray(kind.encode())
    for part in parts:
        raw = part.encode()
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=DATA_KEY_BYTES * 8)


def new_data_key_id() -> str:
    return "dk-" + secrets.token_hex(12)


def wrap_data_key(keyring: Keyring, subject_id: str, data_key_id: str, key: bytes,
                  now: float | None = None) -> Any:
    """The DataKeyRecord of a data key, wrapped by the keyring's active KEK."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    aad = _aad("data-key", subject_id, data_key_id, keyring.active_id)
    return requests_pb2.DataKeyRecord(
        subject_id=subject_id, data_key_id=data_key_id, kek_id=keyring.active_id, algorithm=ALGORITHM,
        nonce=nonce, wrapped_key=AESGCM(keyring.active).encrypt(nonce, key, aad),
        created_time=to_timestamp(time.time() if now is None else now),
    )


def unwrap_data_key(keyring: Keyring, record: Any) -> bytes:
    """The plain data key of a record; KeyringError when its KEK is missing or wrong."""
    if record.algorithm != ALGORITHM:
        raise KeyringError(f"data key {record.data_key_id}: unknown algorithm {record.algorithm!r}")
    kek = keyring.kek(record.kek_id)
    aad = _aad("data-key", record.subject_id, record.data_key_id, record.kek_id)
    try:
        return AESGCM(kek).decrypt(record.nonce, record.wrapped_key, aad)
    except InvalidTag:
        raise WrongKekError(
            f"data key {record.data_key_id} does not unwrap with KEK {record.kek_id!r}: the keyring "
            "holds a different key under that id"
        ) from None


def rewrap_data_key(keyring: Keyring, record: Any) -> Any:
    """The same data key wrapped by the active KEK (key rotation: retire an old KEK)."""
    key = unwrap_data_key(keyring, record)
    rewrapped = wrap_data_key(keyring, record.subject_id, record.data_key_id, key)
    rewrapped.created_time.CopyFrom(record.created_time)
    return rewrapped


def seal_contact(reporter: Any, subject_id: str, data_key_id: str, key: bytes, request_id: str) -> Any:
    """The EncryptedContact of a Reporter for one request."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    plain = reporter.SerializeToString(deterministic=True)
    aad = _aad("contact", subject_id, data_key_id, request_id)
    return requests_pb2.EncryptedContact(
        subject_id=subject_id, data_key_id=data_key_id, algorithm=ALGORITHM, nonce=nonce,
        ciphertext=AESGCM(key).encrypt(nonce, plain, aad),
    )


def open_contact(envelope: Any, key: bytes, request_id: str) -> Any:
    """The Reporter inside an EncryptedContact; ContactUnreadable when it does not open."""
    if envelope.algorithm != ALGORITHM:
        raise ContactUnreadable(f"unknown algorithm {envelope.algorithm!r}")
    aad = _aad("contact", envelope.subject_id, envelope.data_key_id, request_id)
    try:
        plain = AESGCM(key).decrypt(envelope.nonce, envelope.ciphertext, aad)
    except (InvalidTag, ValueError):
        raise ContactUnreadable("the contact does not open with this data key") from None
    reporter = requests_pb2.Reporter()
    reporter.ParseFromString(plain)
    return reporter
