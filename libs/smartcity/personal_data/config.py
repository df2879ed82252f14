"""Personal-data settings from the environment: the operator's secrets and the retention rule.

    PERSONAL_DATA_KEYRING            the KEK keyring: a directory of <kek-id>.key files (a mounted
                                     Secret) or a YAML file {kek-id: key}; required
    PERSONAL_DATA_ACTIVE_KEK         id of the KEK that wraps new data keys ("" = the only one)
    PERSONAL_DATA_SUBJECT_SALT_FILE  the secret salt of subject ids (>= 16 bytes); required
    PERSONAL_DATA_RETENTION_DAYS     contact data of finished requests is destroyed this long
                                     after their last change (30)
    PERSONAL_DATA_ORPHAN_GRACE_S     a data key no request carries is destroyed after (600)
    PERSONAL_DATA_SWEEP_INTERVAL_S   how often the retention rule runs (300)
    PERSONAL_DATA_REWRAP_ON_START    rewrap data keys of older KEKs with the active one (false)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smartcity.personal_data.keyring import Keyring, KeyringError, load_keyring
from smartcity.personal_data.subjects import SubjectHasher, read_salt
from smartcity.settings import SettingsError, env_fields, env_str

KEYRING_VAR = "PERSONAL_DATA_KEYRING"
ACTIVE_KEK_VAR = "PERSONAL_DATA_ACTIVE_KEK"
SALT_VAR = "PERSONAL_DATA_SUBJECT_SALT_FILE"
DAY_S = 86400.0


@dataclass(frozen=True)
class PersonalDataSettings:
    keyring_path: Path
    active_kek_id: str
    salt_file: Path
    retention_days: float = 30.0
    orphan_grace_s: float = 600.0
    sweep_interval_s: float = 300.0
    rewrap_on_start: bool = False

    @property
    def retention_s(self) -> float:
        return self.retention_days * DAY_S

    @classmethod
    def from_env(cls) -> PersonalDataSettings:
        keyring = env_str(KEYRING_VAR, "").strip()
        if not keyring:
            raise KeyringError(f"{KEYRING_VAR} is not set: the gateway needs the KEK secret to encrypt "
                               "citizens' contact data (see docs/personal-data.md)")
        salt = env_str(SALT_VAR, "").strip()
        if not salt:
            raise SettingsError(f"{SALT_VAR} is not set: the gateway needs the subject hash salt "
                                "(see docs/personal-data.md)")
        settings = cls(
            keyring_path=Path(keyring),
            active_kek_id=env_str(ACTIVE_KEK_VAR, "").strip(),
            salt_file=Path(salt),
            **env_fields(cls, "PERSONAL_DATA_", skip={"active_kek_id"}),
        )
        settings.check()
        return settings

    def check(self) -> None:
        for name, value in (("PERSONAL_DATA_RETENTION_DAYS", self.retention_days),
                            ("PERSONAL_DATA_ORPHAN_GRACE_S", self.orphan_grace_s)):
            if value < 0:
                raise SettingsError(f"{name} must be >= 0, got {value}")
        if self.sweep_interval_s <= 0:
            raise SettingsError(f"PERSONAL_DATA_SWEEP_INTERVAL_S must be > 0, got {self.sweep_interval_s}")

    def keyring(self) -> Keyring:
        """The keyring (KeyringError naming the variable when it is missing or malformed)."""
        return load_keyring(self.keyring_path, self.active_kek_id, variable=KEYRING_VAR,
                            active_variable=ACTIVE_KEK_VAR)

    def hasher(self) -> SubjectHasher:
        return SubjectHasher(read_salt(self.salt_file, SALT_VAR))
