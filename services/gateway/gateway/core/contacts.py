"""Contact data in the gateway's answers: opened for the routed OPD only, audited, erasable.

    view (EncryptedContact) ──ContactGate.show──► routed OPD: Reporter in clear ──► audit event
                                                  anyone else: AVAILABLE / ERASED / NONE only
    SubmitRequest.reporter ──seal──► command.submit.encrypted_reporter (the plaintext dropped)
    EraseContactData ──► every data key of the subject destroyed ──► CONTACT_ERASED events

Plain Python around smartcity.personal_data's ContactVault: the audit log, the metric hook and
the clock are given by the adapters (server.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.core.auth import Principal, sees_reporter
from smartcity.personal_data import audit
from smartcity.personal_data.vault import ContactVault, Sealed, requests_of_subject
from smartcity.v1 import requests_pb2

RecordAudit = Callable[[Sequence[Any]], Awaitable[None]]
CountReads = Callable[[str, str, int], None]  # (client, method, how many requests)
CountErasures = Callable[[str], None]  # (why: request, rejected)


def _no_count(client: str, method: str, count: int) -> None:
    """The default metric hook (unit tests)."""


def _no_erasure_count(reason: str) -> None:
    """The default metric hook (unit tests)."""


@dataclass
class ContactGate:
    vault: ContactVault
    record_audit: RecordAudit
    count_reads: CountReads = _no_count
    count_erasures: CountErasures = _no_erasure_count
    clock: Callable[[], float] = time.time
    # Who the gateway is on the audit trail when it acts by itself (retention, discards).
    actor: str = "gateway"

    async def seal(self, reporter: Any, request_id: str) -> Sealed | None:
        return await self.vault.seal(reporter, request_id)

    async def discard(self, sealed: Sealed, requests: Iterable[Any]) -> None:
        """A submit was rejected: its contact must not outlive the rejection."""
        if await self.vault.discard(sealed, requests):
            self.count_erasures("rejected")
            await self.record_audit(audit.contact_destroyed(
                requests_pb2.AUDIT_ACTION_CONTACT_DISCARDED, client_id=self.actor, opd_code="",
                request_ids=[], reason="the submit was rejected", method="SubmitRequest", now=self.clock()))

    async def shown(self, p: Principal, method: str, requests: Sequence[Any]) -> list[Any]:
        """The requests as this caller may see them; what carried contact data is audited
        (before the caller gets it) and counted."""
        answers, revealed = [], []
        for request in requests:
            shown = self.vault.for_caller(request, sees_reporter(p, request.opd_code))
            answers.append(shown.request)
            if shown.revealed:
                revealed.append(request.request_id)
        if revealed:
            now = self.clock()
            # One event per request and answer (an event trail shows the same request often).
            await self.record_audit([audit.contact_read(p.client_id, p.opd_code, rid, method, now)
                                     for rid in dict.fromkeys(revealed)])
            self.count_reads(p.client_id, method, len(set(revealed)))
        return answers

    async def shown_events(self, p: Principal, method: str, events: Sequence[Any]) -> list[Any]:
        """Events whose `request` is shown as `shown` shows requests."""
        answers = []
        for event in events:
            copy = type(event)()
            copy.CopyFrom(event)
            answers.append(copy)
        carrying = [a for a in answers if a.HasField("request")]
        shown = await self.shown(p, method, [a.request for a in carrying])
        for copy, request in zip(carrying, shown, strict=True):
            copy.request.CopyFrom(request)
        return answers

    def subject_of_request(self, request: Any) -> str | None:
        if request.HasField("encrypted_reporter"):
            return str(request.encrypted_reporter.subject_id)
        return None

    def subject_of_contact(self, reporter: Any) -> str | None:
        return self.vault.subject_of(reporter)

    async def erase(self, p: Principal, subject_id: str, requests: Iterable[Any], reason: str,
                    method: str) -> tuple[bool, list[str]]:
        """Destroys a subject's data keys; (whether any was left, the requests it covered)."""
        request_ids = requests_of_subject(requests, subject_id)
        destroyed = await self.vault.erase(subject_id)
        if destroyed:
            self.count_erasures("request")
            await self.record_audit(audit.contact_destroyed(
                requests_pb2.AUDIT_ACTION_CONTACT_ERASED, client_id=p.client_id, opd_code=p.opd_code,
                request_ids=request_ids, reason=reason, method=method, now=self.clock()))
        return destroyed, request_ids
