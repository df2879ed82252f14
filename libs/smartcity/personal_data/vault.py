"""What the gateway does with contact data, without Kafka: seal on submit, reveal to the routed
OPD, show the rest of the world only whether it exists or was erased, erase, and expire.

    SubmitRequest.reporter ──seal──► EncryptedContact (into the command; plaintext dropped)
    ServiceRequest from a view ──for_caller──► routed OPD: reporter opened, CONTACT_DATA_AVAILABLE
                                               others:     no reporter, AVAILABLE / ERASED / NONE
Every answer drops the EncryptedContact: clients get the contact or nothing, never ciphertext.
The key publisher is keytopic.DataKeyTopic in the gateway (any object with the same two
coroutines in tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from smartcity.codec import from_timestamp
from smartcity.personal_data.envelope import ContactUnreadable
from smartcity.personal_data.keystore import DataKeyStore
from smartcity.personal_data.retention import ContactUse, Expiry, expired_subjects
from smartcity.personal_data.subjects import SubjectHasher
from smartcity.v1 import requests_pb2

AVAILABLE = requests_pb2.CONTACT_DATA_STATE_AVAILABLE
ERASED = requests_pb2.CONTACT_DATA_STATE_ERASED
NONE = requests_pb2.CONTACT_DATA_STATE_NONE


class KeyPublisher(Protocol):
    store: DataKeyStore

    async def ensure_key(self, subject_id: str) -> bool: ...

    async def destroy(self, subject_id: str) -> bool: ...

    async def destroy_key(self, subject_id: str, data_key_id: str) -> None: ...


@dataclass(frozen=True)
class Sealed:
    """A submitted contact, encrypted; `new_key`: its data key was made for this submit."""

    contact: Any
    new_key: bool


@dataclass(frozen=True)
class Shown:
    """A request as one caller may see it, and whether it carried contact data in clear."""

    request: Any
    revealed: bool


def has_contact(reporter: Any) -> bool:
    return bool(reporter.name or reporter.phone or reporter.email)


class ContactVault:
    def __init__(self, keys: KeyPublisher, hasher: SubjectHasher) -> None:
        self.keys = keys
        self.hasher = hasher

    @property
    def store(self) -> DataKeyStore:
        return self.keys.store

    def subject_of(self, reporter: Any) -> str | None:
        return self.hasher.subject_id(reporter)

    async def seal(self, reporter: Any, request_id: str) -> Sealed | None:
        """The EncryptedContact of a submitted Reporter (None when it holds nothing); the
        subject's data key is published first if it is new."""
        subject_id = self.hasher.subject_id(reporter)
        if subject_id is None:
            return None
        created = await self.keys.ensure_key(subject_id)
        return Sealed(self.store.seal(reporter, subject_id, request_id), created)

    async def discard(self, sealed: Sealed, requests: Iterable[Any]) -> bool:
        """After a rejected submit: destroys the data key made for it unless a request carries
        it meanwhile (another submit of the same contact). True when destroyed."""
        contact = sealed.contact
        if not sealed.new_key or any(
            r.HasField("encrypted_reporter") and r.encrypted_reporter.data_key_id == contact.data_key_id
            for r in requests
        ):
            return False
        await self.keys.destroy_key(contact.subject_id, contact.data_key_id)
        return True

    def state_of(self, request: Any) -> int:
        if request.HasField("encrypted_reporter"):
            return AVAILABLE if self.store.readable(request.encrypted_reporter) else ERASED
        return NONE

    def for_caller(self, request: Any, sees_contact: bool) -> Shown:
        """A copy of a ServiceRequest for one caller: the contact opened only if it may see it."""
        shown = type(request)()
        shown.CopyFrom(request)
        shown.ClearField("encrypted_reporter")
        # A plaintext reporter never belongs in a view (citizen-requests drops it); if an old
        # record still has one, nobody sees it.
        shown.ClearField("reporter")
        state = self.state_of(request)
        shown.contact_data = state
        if not (sees_contact and state == AVAILABLE):
            return Shown(shown, False)
        try:
            reporter = self.store.open(request.encrypted_reporter, request.request_id)
        except ContactUnreadable:
            reporter = None  # not this request's contact (moved or tampered): show nothing
        if reporter is None:
            shown.contact_data = ERASED
            return Shown(shown, False)
        shown.reporter.CopyFrom(reporter)
        return Shown(shown, True)

    async def erase(self, subject_id: str) -> bool:
        """Destroys a subject's data key; False when it had none left."""
        return await self.keys.destroy(subject_id)

    def expired(self, requests: Iterable[Any], now: float, retention_s: float,
                orphan_grace_s: float) -> list[Expiry]:
        """The subjects the retention rule erases now, given every request the views hold."""
        uses = [
            ContactUse(r.encrypted_reporter.subject_id, r.request_id, r.status,
                       from_timestamp(r.updated_time))
            for r in requests if r.HasField("encrypted_reporter")
        ]
        created = {s: self.store.created_at(s) or 0.0 for s in self.store.subjects()}
        return expired_subjects(uses, created, now, retention_s, orphan_grace_s)


def requests_of_subject(requests: Iterable[Any], subject_id: str) -> list[str]:
    """The ids of the requests carrying a subject's contact."""
    return sorted(r.request_id for r in requests
                  if r.HasField("encrypted_reporter") and r.encrypted_reporter.subject_id == subject_id)
