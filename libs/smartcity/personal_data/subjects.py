"""Whose contact data it is: a subject id, the keyed hash of a reporter's normalised contact.

Every request with the same contact shares one data key, so erasing a citizen's data erases it
from all their requests. The contact that identifies a reporter is the phone number if given,
else the e-mail address, else the name, normalised so that spellings of the same contact
meet: "+62 812-1111" and "0812 1111" are one phone, "Siti@Example.ID" and "siti@example.id"
one address. The hash is HMAC-SHA256 under a secret salt (the operator's), so a subject id
says nothing about the person to whoever lacks the salt, and nobody can test guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from pathlib import Path
from typing import Any

from smartcity.settings import SettingsError

SUBJECT_PREFIX = "subj-"
MIN_SALT_BYTES = 16
_NOT_DIGIT = re.compile(r"\D")
_SPACES = re.compile(r"\s+")


def normalise_phone(phone: str) -> str:
    """Digits only, in the international form of Indonesia: 0812... and +62 812... → 62812..."""
    digits = _NOT_DIGIT.sub("", phone)
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    return digits


def normalise_email(email: str) -> str:
    return email.strip().lower()


def normalise_name(name: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", name)).strip().casefold()


def contact_identity(reporter: Any) -> str | None:
    """The normalised contact that identifies a Reporter ("phone:...", ...), None when empty."""
    phone = normalise_phone(reporter.phone)
    if phone:
        return "phone:" + phone
    email = normalise_email(reporter.email)
    if email:
        return "email:" + email
    name = normalise_name(reporter.name)
    return "name:" + name if name else None


class SubjectHasher:
    """Subject ids under one salt (the salt never appears in repr)."""

    def __init__(self, salt: bytes) -> None:
        if len(salt) < MIN_SALT_BYTES:
            raise SettingsError(f"the subject hash salt must be at least {MIN_SALT_BYTES} bytes")
        self._salt = salt

    def __repr__(self) -> str:
        return "SubjectHasher(<salt withheld>)"

    def subject_id(self, reporter: Any) -> str | None:
        """The subject id of a Reporter, None when it holds no contact at all."""
        identity = contact_identity(reporter)
        if identity is None:
            return None
        return SUBJECT_PREFIX + hmac.new(self._salt, identity.encode(), hashlib.sha256).hexdigest()


def read_salt(path: Path, variable: str) -> bytes:
    """The salt from its secret file (surrounding whitespace ignored)."""
    if not path.is_file():
        raise SettingsError(f"{variable}={str(path)!r}: no such file (mount the subject hash salt)")
    salt = path.read_bytes().strip()
    if len(salt) < MIN_SALT_BYTES:
        raise SettingsError(f"{variable}={str(path)!r}: the salt is {len(salt)} bytes, at least "
                            f"{MIN_SALT_BYTES} are needed")
    return salt
