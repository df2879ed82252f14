"""The projector against the real broker: read-your-writes across gateway replicas.

A request written to the state topic a moment ago (through another replica) is in this
replica's views once `read_up_to_now` returns, without waiting on a timer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from gateway.adapters.history_store import HistoryStore
from gateway.adapters.projector import Projector, stored_topics
from gateway.adapters.request_history import RequestHistory
from gateway.core.views import Views
from gateway_testing import produce, service_request
from smartcity.request_rules import OPEN_STATUSES
from smartcity.settings import PlatformSettings

pytestmark = pytest.mark.kafka


async def test_read_up_to_now_returns_once_the_views_hold_what_was_just_written(
    kafka_bootstrap: str, topic_prefix: str, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    settings = PlatformSettings(
        service_name="gateway", kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix
    )
    views = Views()
    store = HistoryStore(tmp_path / "history.sqlite3", stored_topics(topic_prefix)).open()
    history = RequestHistory(store, views, OPEN_STATUSES)
    projector = Projector(
        settings, views, history, on_change=lambda view, change: None, on_event=lambda event: None
    )
    await projector.start()
    try:
        await asyncio.wait_for(projector.caught_up.wait(), 30)
        for i in range(20):
            request_id = f"req-{i:02d}"
            await produce(
                producer, topic_prefix, "requests.state.v1", request_id, service_request(request_id)
            )
            assert await projector.read_up_to_now(10.0)
            assert history.get(request_id) is not None  # no sleep, no polling by the caller
        # Nothing new since: it answers at once.
        assert await projector.read_up_to_now(0.0)
    finally:
        await projector.stop()
        store.close()
