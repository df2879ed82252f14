"""The retention sweep: destroys the data keys nothing needs any more, and says so on the audit.

    every PERSONAL_DATA_SWEEP_INTERVAL_S:  views' requests ──retention rule──► expired subjects
        ──► tombstones on requests.data-keys.v1 ──► CONTACT_EXPIRED / CONTACT_DISCARDED events

Run it only once the views hold every request (the gateway is ready): a request not yet read
would make its contact look unused and the orphan rule would destroy it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from smartcity.personal_data import audit
from smartcity.personal_data.config import PersonalDataSettings
from smartcity.personal_data.retention import Expiry
from smartcity.personal_data.vault import ContactVault
from smartcity.v1 import requests_pb2

RecordAudit = Callable[[Sequence[Any]], Awaitable[None]]


class RetentionSweeper:
    def __init__(self, vault: ContactVault, record_audit: RecordAudit,
                 requests: Callable[[], Iterable[Any]], settings: PersonalDataSettings, *, actor: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._vault = vault
        self._record_audit = record_audit
        self._requests = requests
        self._settings = settings
        self._actor = actor
        self._clock = clock

    async def sweep(self) -> list[Expiry]:
        """One round: what expired now is destroyed and audited."""
        now = self._clock()
        expired = self._vault.expired(self._requests(), now, self._settings.retention_s,
                                      self._settings.orphan_grace_s)
        for expiry in expired:
            await self._vault.erase(expiry.subject_id)
            action = (requests_pb2.AUDIT_ACTION_CONTACT_EXPIRED if expiry.request_ids
                      else requests_pb2.AUDIT_ACTION_CONTACT_DISCARDED)
            reason = (f"retention: finished more than {self._settings.retention_days:g} days ago"
                      if expiry.request_ids else "no request carries this contact")
            await self._record_audit(audit.contact_destroyed(
                action, client_id=self._actor, opd_code="", request_ids=expiry.request_ids,
                reason=reason, method="retention", now=now))
        return expired
