"""The Kafka transport of this worker: the platform's (idempotent producer) plus a rewind.

faust-streaming (0.15) can skip records when a worker starts or a rebalance ends. Its recovery
resumes the stream partitions, seeks them to their committed offsets while the fetcher is
already delivering, and then clears the stream queues (flow control resume). Records that were
delivered into the queues in that window are dropped, with the fetch position already past
them. On a partition with a committed offset they are skipped until the next restart (and the
commits stall behind the hole); on a partition never committed yet (aiokafka does not seek
those at all) they are gone. Seen here as heartbeats missing after a SIGKILL and restart.

The fix: every time the flow resumes after such a seek, the active stream partitions are
paused, left until any fetch in flight has come back (records of paused partitions are not
delivered and do not move Faust's read offset), sought again to the committed offset they had
when the flow resumed (the earliest one if never committed, as auto_offset_reset=earliest
means) and resumed. Records are then read again from there: duplicates, which this service
ignores by seq; nothing is lost. Cost: the streams wait 1.5 s after each (re)assignment.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers.aiokafka import Consumer as _FaustConsumer

from smartcity.streams import IdempotentTransport

log = logging.getLogger(__name__)

SCHEME = "smartcity-rewind"
# The fetcher waits up to 1 s for records; a little more and no fetch started before the pause
# can still deliver.
FETCH_SETTLE_S = 1.5


class RewindingConsumer(_FaustConsumer):  # type: ignore[misc]
    _rewind_due = False

    async def perform_seek(self) -> None:
        await super().perform_seek()
        self._rewind_due = True

    def resume_flow(self) -> None:
        super().resume_flow()
        if self._rewind_due:
            self._rewind_due = False
            self.add_future(self._rewind())

    async def _rewind(self) -> None:
        generation = self.app.consumer_generation_id
        changelogs = self.app.tables.changelog_topics
        streams = {tp for tp in self._get_active_partitions() if tp.topic not in changelogs}
        if not streams:
            return
        # Where to go back to, taken now: a first commit made while we wait could already be past
        # the dropped records (Faust does not hold a first commit back for a gap at its head).
        committed = {tp: self._committed_offset.get(tp) for tp in streams}
        self.pause_partitions(streams)
        try:
            await asyncio.sleep(FETCH_SETTLE_S)
            if generation == self.app.consumer_generation_id:
                await self.seek_wait(await self._rewind_targets(committed))
        finally:
            if generation == self.app.consumer_generation_id:  # else the new recovery decides
                self.resume_partitions(streams & set(self.assignment()))

    async def _rewind_targets(self, committed: dict[Any, int | None]) -> dict[Any, int]:
        fresh = [tp for tp, offset in committed.items() if offset is None]
        earliest = await self.earliest_offsets(*fresh) if fresh else {}
        log.debug("rewinding %d stream partitions (%d never committed)", len(committed), len(fresh))
        return {tp: offset if offset is not None else (earliest.get(tp) or 0)
                for tp, offset in committed.items()}


class RewindingTransport(IdempotentTransport):  # type: ignore[misc]
    Consumer = RewindingConsumer


TRANSPORTS.aliases[SCHEME] = "camera_health.transport:RewindingTransport"


def broker_url(bootstrap: str) -> str:
    return ";".join(f"{SCHEME}://{b.strip()}" for b in bootstrap.split(","))
