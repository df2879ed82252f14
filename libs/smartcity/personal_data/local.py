"""Fresh personal-data secrets for local runs and tests: a keyring with one random KEK, a salt.

Production secrets come from the operator (docs/personal-data.md); these are made per run, so
nothing encrypted with them is readable once their folder is gone.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from smartcity.personal_data.config import ACTIVE_KEK_VAR, KEYRING_VAR, SALT_VAR
from smartcity.personal_data.keyring import KEK_FILE_SUFFIX, new_kek_text


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
