"""The key-encryption keys (KEKs): a keyring from a mounted secret and the id of the active one.

A keyring is either a directory (a Kubernetes Secret mounted as files), where each regular file
named `<kek-id>.key` holds one 256-bit key, or a YAML file mapping kek ids to keys:

    kek-2026-12: 3q2+7w...=        # base64 (44 characters) or 64 hex digits

The active KEK wraps every new data key; the others stay to unwrap data keys made under them
(key rotation: add a new KEK, make it active, old data stays readable). Any problem is a
KeyringError naming the variable and the file, never quoting a key.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from smartcity.settings import SettingsError

KEK_BYTES = 32
KEK_FILE_SUFFIX = ".key"
_KEK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEX = re.compile(r"^[0-9a-fA-F]{64}$")


class KeyringError(SettingsError):
    """The keyring is missing, malformed, or does not fit the data: the gateway will not start."""


@dataclass(frozen=True)
class Keyring:
    """KEKs by id (never in repr) and the id of the one that wraps new data keys."""

    keys: Mapping[str, bytes] = field(repr=False)
    active_id: str

    def __post_init__(self) -> None:
        if self.active_id not in self.keys:
            known = ", ".join(sorted(self.keys)) or "none"
            raise KeyringError(f"the active KEK {self.active_id!r} is not in the keyring (it holds: {known})")

    def kek(self, kek_id: str) -> bytes:
        try:
            return self.keys[kek_id]
        except KeyError:
            raise KeyringError(f"KEK {kek_id!r} is not in the keyring") from None

    @property
    def active(self) -> bytes:
        return self.keys[self.active_id]

    def ids(self) -> list[str]:
        return sorted(self.keys)


def parse_kek(text: str, where: str) -> bytes:
    """A KEK from its text form (base64 or hex of 32 bytes); `where` names it in errors."""
    value = text.strip()
    if _HEX.match(value):
        return bytes.fromhex(value)
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{where}: not base64 or hex (expected a 256-bit key)") from None
    if len(key) != KEK_BYTES:
        raise KeyringError(f"{where}: the key is {len(key)} bytes, a KEK must be {KEK_BYTES} (256 bits)")
    return key


def check_kek_id(kek_id: str, where: str) -> str:
    if not _KEK_ID.match(kek_id):
        raise KeyringError(f"{where}: {kek_id!r} is not a usable KEK id (letters, digits, . _ -; up to 64)")
    return kek_id


def read_keys(path: Path, variable: str) -> dict[str, bytes]:
    """The KEKs of a keyring directory or file; `variable` names the setting in errors."""
    if not path.exists():
        raise KeyringError(f"{variable}={str(path)!r}: no such file or directory (mount the KEK secret)")
    keys = _read_directory(path, variable) if path.is_dir() else _read_file(path, variable)
    if not keys:
        raise KeyringError(f"{variable}={str(path)!r} holds no KEK (files named <kek-id>{KEK_FILE_SUFFIX})")
    return keys


def _read_directory(path: Path, variable: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    # Kubernetes mounts a Secret's keys as symlinks beside "..data" folders: follow, skip dot names.
    for entry in sorted(path.iterdir()):
        if entry.name.startswith(".") or not entry.name.endswith(KEK_FILE_SUFFIX) or not entry.is_file():
            continue
        kek_id = check_kek_id(entry.name.removesuffix(KEK_FILE_SUFFIX), f"{variable}: {entry.name}")
        keys[kek_id] = parse_kek(entry.read_text(), f"{variable}: {entry.name}")
    return keys


def _read_file(path: Path, variable: str) -> dict[str, bytes]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise KeyringError(f"{variable}={str(path)!r}: not YAML ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise KeyringError(f"{variable}={str(path)!r}: expected a mapping of KEK ids to keys")
    return {check_kek_id(str(k), f"{variable}: {path.name}"): parse_kek(str(v), f"{variable}: KEK {k!r}")
            for k, v in data.items()}


def load_keyring(path: Path, active_id: str, *, variable: str, active_variable: str) -> Keyring:
    """The keyring at `path`; with no `active_id` the keyring must hold exactly one KEK."""
    keys = read_keys(path, variable)
    if not active_id:
        if len(keys) != 1:
            raise KeyringError(
                f"{active_variable} is not set and {variable} holds {len(keys)} KEKs "
                f"({', '.join(sorted(keys))}): name the one that wraps new data keys"
            )
        active_id = next(iter(keys))
    if active_id not in keys:
        raise KeyringError(
            f"{active_variable}={active_id!r} is not in the keyring {variable}={str(path)!r} "
            f"(it holds: {', '.join(sorted(keys))})"
        )
    return Keyring(keys=keys, active_id=active_id)


def new_kek_text() -> str:
    """A fresh random KEK in the keyring's text form (for operators and tests)."""
    return base64.b64encode(secrets.token_bytes(KEK_BYTES)).decode()
