"""A request read model on a history store in a temporary directory, fed without Kafka: for the
unit tests of the API and the views (the real store, SQLite, on local disk)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from gateway.adapters.history_store import HistoryStore
from gateway.adapters.request_history import HistoryRecord, RequestHistory
from gateway.core.views import Views
from smartcity.request_rules import OPEN_STATUSES

_TOPIC = "test.requests"


class FedHistory(RequestHistory):
    """A RequestHistory whose records come from the test instead of the projector."""

    def __init__(self, directory: Path, views: Views) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        super().__init__(
            HistoryStore(directory / "history.sqlite3", [_TOPIC], cache_mib=2).open(), views, OPEN_STATUSES
        )
        self._offsets = itertools.count(1)

    def feed(self, view: str, *messages: Any) -> list[Any]:
        """Applies request states ("requests") or request events ("events") as one batch;
        returns the versions watchers would hear."""
        records = []
        for message in messages:
            offset = next(self._offsets)
            records.append(HistoryRecord(view, 0, offset, message.request_id, message))
        return self.apply(records, {(_TOPIC, 0): next(self._offsets)})
