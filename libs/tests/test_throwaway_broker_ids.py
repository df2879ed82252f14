"""The test brokers' KRaft cluster ids: kafka-storage takes an id starting with "-" for an option."""

from __future__ import annotations

import uuid

import pytest

from smartcity import testing


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x01" + bytes(15))])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(drawn))
    cluster_id = testing._cluster_id()
    assert cluster_id == "AQAAAAAAAAAAAAAAAAAAAA"  # the second draw: the first began with "-"
