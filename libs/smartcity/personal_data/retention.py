"""The retention rule: whose data keys to destroy because nothing needs the contact any more.

A subject's data key is destroyed when every request that carries its contact is finished
(RESOLVED, CLOSED or REJECTED) and the last of them changed more than the retention period
ago; or when no request carries it at all and the key is older than a grace period (a submit
that was rejected, or never arrived). Plain Python: the gateway feeds it its views.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from smartcity.v1 import requests_pb2

FINISHED = frozenset({
    requests_pb2.REQUEST_STATUS_RESOLVED,
    requests_pb2.REQUEST_STATUS_CLOSED,
    requests_pb2.REQUEST_STATUS_REJECTED,
})


@dataclass(frozen=True)
class ContactUse:
    """One request carrying a subject's contact."""

    subject_id: str
    request_id: str
    status: int
    last_change: float  # seconds since the epoch


@dataclass(frozen=True)
class Expiry:
    subject_id: str
    request_ids: tuple[str, ...]  # empty for a key no request uses


def expired_subjects(uses: Iterable[ContactUse], keys_created: Mapping[str, float], now: float,
                     retention_s: float, orphan_grace_s: float) -> list[Expiry]:
    """The subjects (among those with a data key, `keys_created`) whose key the rule destroys."""
    by_subject: dict[str, list[ContactUse]] = {}
    for use in uses:
        by_subject.setdefault(use.subject_id, []).append(use)
    expired: list[Expiry] = []
    for subject_id, created in sorted(keys_created.items()):
        subject_uses = by_subject.get(subject_id, [])
        if not subject_uses:
            if created + orphan_grace_s <= now:
                expired.append(Expiry(subject_id, ()))
            continue
        if all(u.status in FINISHED for u in subject_uses) and \
                max(u.last_change for u in subject_uses) + retention_s <= now:
            expired.append(Expiry(subject_id, tuple(sorted(u.request_id for u in subject_uses))))
    return expired
