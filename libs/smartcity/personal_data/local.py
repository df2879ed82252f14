"""Personal data for local runs and tests: fresh secrets (a keyring with one random KEK, a salt),
and the key topic in memory.

Production secrets come from the operator (docs/personal-data.md); these are made per run, so
nothing encrypted with them is readable once their folder is gone.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from smartcity.personal_data.config import ACTIVE_KEK_VAR, KEYRING_VAR, SALT_VAR
from smartcity.personal_data.keyring import KEK_FILE_SUFFIX, Keyring, new_kek_text
from smartcity.personal_data.keystore import DataKeyStore, record_key


def add_kek(keyring_dir: Path, kek_id: str) -> None:
    """Adds a random KEK to a keyring directory (readable by the owner only)."""
    keyring_dir.mkdir(parents=True, exist_ok=True)
    path = keyring_dir / f"{kek_id}{KEK_FILE_SUFFIX}"
    path.write_text(new_kek_text() + "\n")
    path.chmod(0o600)


def write_local_secrets(folder: Path, kek_id: str = "local-1") -> dict[str, str]:
    """Makes (once) a keyring and a salt under `folder`; returns the environment naming them."""
    keyring = folder / "keyring"
    if not any(keyring.glob(f"*{KEK_FILE_SUFFIX}")):
        add_kek(keyring, kek_id)
    salt = folder / "subject-salt"
    if not salt.exists():
        folder.mkdir(parents=True, exist_ok=True)
        salt.write_text(secrets.token_hex(32) + "\n")
        salt.chmod(0o600)
    active = sorted(p.stem for p in keyring.glob(f"*{KEK_FILE_SUFFIX}"))[-1]
    return {KEYRING_VAR: str(keyring), ACTIVE_KEK_VAR: active, SALT_VAR: str(salt)}


class InMemoryKeys:
    """The key topic's writes applied to a DataKeyStore in memory: keytopic.DataKeyTopic for unit
    tests of what uses it (the topic itself is tested on the broker)."""

    def __init__(self, keyring: Keyring) -> None:
        self.store = DataKeyStore(keyring)
        self.destroyed: list[str] = []

    async def ensure_key(self, subject_id: str) -> bool:
        if subject_id in self.store:
            return False
        record = self.store.new_key(subject_id)
        self.store.apply(record_key(subject_id, record.data_key_id), record)
        return True

    async def destroy_key(self, subject_id: str, data_key_id: str) -> None:
        self.store.apply(record_key(subject_id, data_key_id), None)
        self.destroyed.append(subject_id)

    async def destroy(self, subject_id: str) -> bool:
        keys = self.store.keys_of(subject_id)
        for key in keys:
            self.store.apply(key, None)
        self.destroyed += [subject_id] if keys else []
        return bool(keys)


def random_keyring(kek_id: str = "test-1") -> Keyring:
    """A keyring of one random KEK, in memory."""
    return Keyring(keys={kek_id: base64.b64decode(new_kek_text())}, active_id=kek_id)
