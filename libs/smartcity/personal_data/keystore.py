"""The data keys a process knows, by subject: sealing and opening contacts, destroying keys.

Plain Python (no Kafka): fed the records of requests.data-keys.v1 by keytopic.DataKeyTopic,
which also publishes what `new_key` makes and the tombstones of erasures. A data key is
unwrapped (KEK → plain key) on first use and the plain key kept in memory only.

The topic's key is "<subject id>/<data key id>": one record per data key, so two gateway
replicas that both give a new subject a key at the same moment each keep theirs (both stay
valid; every replica then seals with the subject's oldest). Erasing a subject tombstones every
data key it has; a later contact of the same subject gets a new key with a new id, so contacts
sealed before the erasure never open again, whatever happens after.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from smartcity.codec import from_timestamp
from smartcity.personal_data import envelope
from smartcity.personal_data.keyring import Keyring, KeyringError

# Key of the record proving which KEK a keyring holds: "kek-check:<kek id>".
KEK_CHECK_PREFIX = "kek-check:"


def kek_check_subject(kek_id: str) -> str:
    return KEK_CHECK_PREFIX + kek_id


def record_key(subject_id: str, data_key_id: str) -> str:
    """The topic key of a data key record."""
    return f"{subject_id}/{data_key_id}"


class DataKeyStore:
    """Wrapped data keys by subject id and data key id, plain keys cached by data key id."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._subjects: dict[str, dict[str, Any]] = {}
        self._checks: dict[str, Any] = {}
        self._plain: dict[str, bytes] = {}

    def __len__(self) -> int:
        return len(self._subjects)

    def __contains__(self, subject_id: object) -> bool:
        return subject_id in self._subjects

    def apply(self, key: str, record: Any | None) -> None:
        """One record of the key topic by its topic key (None: a tombstone, the key destroyed)."""
        if key.startswith(KEK_CHECK_PREFIX):
            kek_id = key.removeprefix(KEK_CHECK_PREFIX)
            if record is None:
                self._checks.pop(kek_id, None)
            else:
                self._checks[kek_id] = record
            return
        subject_id, _, data_key_id = key.partition("/")
        keys = self._subjects.setdefault(subject_id, {})
        if record is None:
            keys.pop(data_key_id, None)
            self._plain.pop(data_key_id, None)
        else:
            keys[data_key_id] = record
        if not keys:
            del self._subjects[subject_id]

    def record(self, subject_id: str) -> Any | None:
        """The data key a subject's contacts are sealed with: its oldest (replicas agree)."""
        keys = self._subjects.get(subject_id)
        if not keys:
            return None
        return min(keys.values(), key=lambda r: (from_timestamp(r.created_time), r.data_key_id))

    def keys_of(self, subject_id: str) -> list[str]:
        """The topic keys of every data key of a subject."""
        return [record_key(subject_id, k) for k in sorted(self._subjects.get(subject_id, {}))]

    def records(self) -> Iterator[tuple[str, Any]]:
        for subject_id, keys in list(self._subjects.items()):
            for data_key_id, record in list(keys.items()):
                yield record_key(subject_id, data_key_id), record

    def created_at(self, subject_id: str) -> float | None:
        """When the subject's newest data key was made (None: it has none)."""
        keys = self._subjects.get(subject_id)
        return max(from_timestamp(r.created_time) for r in keys.values()) if keys else None

    def subjects(self) -> list[str]:
        return sorted(self._subjects)

    def new_key(self, subject_id: str, now: float | None = None) -> Any:
        """A fresh data key for a subject, wrapped by the active KEK: the record to publish."""
        key = envelope.new_data_key()
        record = envelope.wrap_data_key(self.keyring, subject_id, envelope.new_data_key_id(), key, now)
        self._plain[record.data_key_id] = key
        return record

    def _key(self, record: Any) -> bytes:
        key = self._plain.get(record.data_key_id)
        if key is None:
            key = envelope.unwrap_data_key(self.keyring, record)
            self._plain[record.data_key_id] = key
        return key

    def seal(self, reporter: Any, subject_id: str, request_id: str) -> Any:
        """The EncryptedContact of a Reporter under the subject's data key."""
        record = self.record(subject_id)
        if record is None:
            raise KeyError(f"subject {subject_id} has no data key (publish one first)")
        return envelope.seal_contact(reporter, subject_id, record.data_key_id, self._key(record), request_id)

    def _record_of(self, sealed: Any) -> Any | None:
        return self._subjects.get(sealed.subject_id, {}).get(sealed.data_key_id)

    def readable(self, sealed: Any) -> bool:
        """Whether the data key of an EncryptedContact still exists."""
        return self._record_of(sealed) is not None

    def open(self, sealed: Any, request_id: str) -> Any | None:
        """The Reporter of an EncryptedContact, None when its data key is destroyed.

        Raises ContactUnreadable when the key exists but the contact does not open with it
        (tampered, or moved to another request)."""
        record = self._record_of(sealed)
        if record is None:
            return None
        return envelope.open_contact(sealed, self._key(record), request_id)

    # ---- the keyring against the data

    def kek_check_to_publish(self) -> Any | None:
        """The kek-check record of the active KEK when the topic has none yet."""
        if self.keyring.active_id in self._checks:
            return None
        return envelope.wrap_data_key(self.keyring, kek_check_subject(self.keyring.active_id),
                                      envelope.new_data_key_id(), envelope.new_data_key())

    def kek_check_record(self) -> Any | None:
        return self._checks.get(self.keyring.active_id)

    def verify(self) -> None:
        """Raises KeyringError unless every data key and kek-check unwraps with this keyring.

        A kek-check of a KEK the keyring no longer holds is fine (a retired KEK) as long as no
        data key still needs it."""
        problems: list[str] = []
        for kek_id, record in sorted(self._checks.items()):
            if kek_id in self.keyring.keys:
                try:
                    envelope.unwrap_data_key(self.keyring, record)
                except KeyringError:
                    problems.append(f"KEK {kek_id!r} in the keyring is not the key that made the "
                                    "data on the topic (wrong key under that id)")
        missing: dict[str, int] = {}
        wrong: dict[str, int] = {}
        for _, record in self.records():
            if record.kek_id not in self.keyring.keys:
                missing[record.kek_id] = missing.get(record.kek_id, 0) + 1
                continue
            try:
                self._key(record)
            except KeyringError:
                wrong[record.kek_id] = wrong.get(record.kek_id, 0) + 1
        problems += [f"KEK {k!r} is missing from the keyring, and {n} data key(s) need it"
                     for k, n in sorted(missing.items())]
        problems += [f"{n} data key(s) do not unwrap with KEK {k!r}: wrong key under that id"
                     for k, n in sorted(wrong.items()) if not any(k in p for p in problems)]
        if problems:
            raise KeyringError("the keyring does not fit the data keys on the topic: " + "; ".join(problems))

    def under_old_keks(self) -> list[tuple[str, Any]]:
        """Data keys wrapped by a KEK other than the active one (to rewrap, then retire it)."""
        return [(k, r) for k, r in self.records() if r.kek_id != self.keyring.active_id]

    def rewrapped(self, record: Any) -> Any:
        return envelope.rewrap_data_key(self.keyring, record)
