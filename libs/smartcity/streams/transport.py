"""Faust's Kafka transport with the platform's two fixes: an idempotent producer always, and a
consumer that reads again what flow control dropped (scheme `smartcity://`, see `create_app`).

Importing this module registers the scheme.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import faust
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers.aiokafka import Consumer as _FaustConsumer
from faust.transport.drivers.aiokafka import Producer as _FaustProducer
from faust.transport.drivers.aiokafka import Transport as _FaustTransport
from faust.types import TP

log = logging.getLogger(__name__)


class _IdempotentProducer(_FaustProducer):  # type: ignore[misc]
    """Faust only turns on idempotence inside transactions; the platform wants it always."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class _TakenOffsets(faust.Sensor):  # type: ignore[misc]
    """Tells the consumer which offsets its streams took from their queues (began to process)."""

    def __init__(self, consumer: RewindingConsumer) -> None:
        super().__init__()
        self._consumer = consumer

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self._consumer.note_taken(tp, offset, stream)


class RewindingConsumer(_FaustConsumer):  # type: ignore[misc]
    """The Faust consumer, plus: what flow control drops is read again, what was taken is not.

    faust-streaming (0.15) can skip records when a worker starts or a rebalance ends. Its
    recovery resumes the stream partitions, seeks them to their committed offsets while the
    fetcher is already delivering, and then resumes flow control, which clears the stream
    queues. Records delivered into the queues in that window and not yet taken by the agent are
    dropped, with the fetch position (and Faust's read offset) already past them: on a
    partition never committed (aiokafka does not seek those at all) they are gone; on a
    committed one they are skipped until the next restart. Seen in camera-health as heartbeats
    missing after a SIGKILL and restart. In the same window the agent can also take records
    that the seek then delivers a second time (the foundation roundtrip counted them twice).

    So this consumer keeps, per stream partition and consumer generation, the highest offset a
    stream took (a sensor: `on_stream_event_in`), and
    - never delivers a record at or below it again in that generation (the seek's re-delivery
      of what was processed in the window);
    - when flow control clears the queues on resume (it wraps `app.flow_control.clear`), it
      notes, per partition, the lowest dropped offset above it. Only those partitions are rewound: paused
      at once (nothing else of theirs reaches the streams, a record the fetcher still held is
      withheld), and, once every fetch round begun before the pause has ended (no stale record
      can follow: aiokafka discards fetched data from before a seek), sought to that offset and
      resumed. Nothing is lost, nothing taken is delivered twice, order is kept.
    Cost: only partitions that really lost records pause, until the fetch round then running
    ends (the fetcher waits at most 1 s for records) plus one seek; nothing otherwise.

    Assumes one stream reads a topic (true of every service here); a partition seen taken by
    two streams falls back to rewinding to the lowest dropped offset (duplicates, no loss).
    A new generation (rebalance) starts afresh: Faust seeks to the committed offsets itself.

    And a commit that fails does not count as made. Faust (0.15) notes the offsets of a commit
    as committed whether or not the broker took them. A commit fails when the group rebalanced
    under it (the broker restarting, a member joining); if the new generation's seek to the
    committed offsets ran while the commit was in flight, Faust then overwrites what the seek
    found with the failed commit's offsets, and once the records read again are processed it
    sees nothing newer to commit: the partition's committed offset stays behind until the next
    rebalance (seen as a camera-health partition's lag stuck after a broker restart). So such
    a failed commit puts back the offsets the seek found.

    And a gap is only offsets never fetched. Faust (0.15) counts the offsets between the last
    record read and the next one delivered as a gap (records that do not exist: compacted away,
    transaction markers) and commits past them as if processed, the next one included. Its
    seek to the committed offsets at start moves "the last record read" back while records
    fetched before it are still being delivered: the next one then opened a "gap" over records
    already processed (and over the next, not processed yet), so those offsets were acked twice,
    and Faust's commit, which stops at the first offset it holds twice, moved by one offset a
    commit from then on (a restarted wifi-telemetry's committed offsets crept 1 a second while
    it kept up with 86 messages a second on each partition, caught up 55-68 s after the restart
    instead of 9). So a gap starts above the highest offset fetched in the generation and ends
    below the record that revealed it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._taken: dict[Any, int] = {}  # TP -> highest offset a stream took, this generation
        self._taker: dict[Any, int] = {}  # TP -> id of the stream that took it
        self._fetched: dict[Any, int] = {}  # TP -> highest offset delivered, this generation
        self._shared: set[Any] = set()  # TPs read by more than one stream
        self._rewind_to: dict[Any, int] = {}  # TP -> offset it is to be read again from
        self._rewind_paused: set[Any] = set()  # what the rewind paused (and resumes)
        self._rewinding_epoch: int | None = None  # generation whose rewind task runs
        self._epoch = 0  # bumped by every revocation and assignment
        self._rounds_started = 0  # fetch rounds (calls of getmany) begun
        self._rounds_ended = 0
        self._rounds_mark = 0  # rounds begun when the last rewind paused its partitions
        self._seeks = 0  # seeks to the committed offsets (`perform_seek`) made
        self._sought: dict[Any, int | None] = {}  # TP -> committed offset the last seek found
        deliver: Callable[[Any], Awaitable[None]] = getattr(self, "callback")  # noqa: B009  (the conductor; untyped for mypy)

        async def callback(message: Any) -> None:
            if message.generation_id == self.app.consumer_generation_id:
                fetched = self._fetched.get(message.tp)
                if fetched is None or message.offset > fetched:
                    self._fetched[message.tp] = message.offset
            if not self._withheld(message):
                await deliver(message)

        self.callback = callback
        self.app.sensors.add(_TakenOffsets(self))
        flow = self.app.flow_control
        clear = flow.clear

        def clear_and_rewind() -> None:
            dropped = self._dropped(flow) if flow.is_active() else {}
            clear()
            if dropped:
                self._start_rewind(dropped)

        flow.clear = clear_and_rewind

    def note_taken(self, tp: Any, offset: int, stream: Any) -> None:
        taker = self._taker.setdefault(tp, id(stream))
        if taker != id(stream):
            self._shared.add(tp)
        taken = self._taken.get(tp)
        if taken is None or offset > taken:
            self._taken[tp] = offset

    def _taken_by_stream(self, tp: Any) -> int | None:
        return None if tp in self._shared else self._taken.get(tp)

    def _withheld(self, message: Any) -> bool:
        if message.generation_id != self.app.consumer_generation_id:
            return False  # the stream skips it itself
        tp, offset = message.tp, message.offset
        taken = self._taken_by_stream(tp)
        if taken is not None and offset <= taken:
            return True  # already taken in this generation: a re-delivery
        target = self._rewind_to.get(tp)
        if target is not None:  # paused for a rewind: read again from the target
            self._rewind_to[tp] = min(target, offset)
            return True
        return False

    def _dropped(self, flow: Any) -> dict[Any, int]:
        """Per stream partition, the lowest offset in the queues not taken yet (about to go)."""
        generation = self.app.consumer_generation_id
        assignment = self.assignment()
        dropped: dict[Any, int] = {}
        for queue in list(flow._queues):
            for item in list(getattr(queue, "_queue", ())):
                message = getattr(item, "message", None)
                if message is None or getattr(message, "generation_id", None) != generation:
                    continue
                tp, offset = message.tp, message.offset
                taken = self._taken_by_stream(tp)
                if tp in assignment and (taken is None or offset > taken):
                    tp = TP(tp.topic, tp.partition)  # Faust's own type (aiokafka's in messages)
                    dropped[tp] = min(offset, dropped.get(tp, offset))
        changelogs = self.app.tables.changelog_topics
        return {tp: offset for tp, offset in dropped.items() if tp.topic not in changelogs}

    def _start_rewind(self, dropped: dict[Any, int]) -> None:
        for tp, offset in dropped.items():
            self._rewind_to[tp] = min(offset, self._rewind_to.get(tp, offset))
        active = self._get_active_partitions()
        pause = {tp for tp in dropped if tp in active}
        self.pause_partitions(pause)
        self._rewind_paused |= pause
        self._rounds_mark = self._rounds_started
        log.info("flow control dropped records of %d stream partitions, rewinding: %s", len(dropped),
                 _offsets_text(dropped))
        if self._rewinding_epoch != self._epoch:
            self._rewinding_epoch = self._epoch
            self.add_future(self._rewind(self._epoch))

    async def _rewind(self, epoch: int) -> None:
        try:
            while self._rewind_to and epoch == self._epoch and not self.should_stop:
                # A fetch round begun before the pause may still hold records of the paused
                # partitions: withheld, but they would move the read offset past the seek.
                if self._rounds_ended < self._rounds_mark:
                    await asyncio.sleep(0.02)
                    continue
                targets = dict(self._rewind_to)
                await self.seek_wait(targets)  # sets Faust's read offsets too
                if epoch != self._epoch:
                    return
                log.info("rewound %s", _offsets_text(targets))
                for tp, offset in targets.items():
                    if self._rewind_to.get(tp) == offset:  # else dropped again meanwhile
                        del self._rewind_to[tp]
                resume = {tp for tp in self._rewind_paused if tp not in self._rewind_to}
                self._rewind_paused -= resume
                self.resume_partitions({tp for tp in resume if tp in self.assignment()})
        finally:
            if self._rewinding_epoch == epoch:
                self._rewinding_epoch = None

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        """Faust's gap from `offset_from` to the record at `offset_to` that revealed it: of those,
        the offsets above the highest fetched in this generation and below that record (see
        the class doc)."""
        fetched = self._fetched.get(tp)
        if fetched is not None:
            offset_from = max(offset_from, fetched + 1)
        await super()._add_gap(tp, offset_from, offset_to - 1)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[Any, Any]]:  # noqa: ASYNC109  (Faust's)
        self._rounds_started += 1
        try:
            async for item in super().getmany(timeout):
                yield item
        finally:
            self._rounds_ended += 1

    async def perform_seek(self) -> None:
        await super().perform_seek()
        self._seeks += 1
        self._sought = {tp: self._committed_offset.get(tp) for tp in self.assignment()}

    async def _commit_offsets(self, offsets: Mapping[Any, int], start_new_transaction: bool = True) -> bool:
        seeks = self._seeks
        did_commit: bool = await super()._commit_offsets(offsets, start_new_transaction)
        if not did_commit and seeks != self._seeks:
            self._undo_commit(offsets)
        return did_commit

    def _undo_commit(self, offsets: Mapping[Any, int]) -> None:
        """Puts back, for the partitions of a commit that failed across a seek, what the seek
        found (see the class doc); the records after it are being read again."""
        undone: dict[Any, int | None] = {}
        for tp in offsets:
            if tp not in self._sought:
                self._committed_offset.pop(tp, None)  # not ours any more
            elif self._committed_offset.get(tp) != self._sought[tp]:
                undone[tp] = self._sought[tp]
                self._committed_offset[tp] = self._sought[tp]
        if undone:
            log.warning("a commit failed across a rebalance; committed offsets put back to what the"
                        " seek found: %s", _offsets_text(undone))

    def _new_generation(self) -> None:
        self._epoch += 1
        self._taken.clear()
        self._taker.clear()
        self._fetched.clear()
        self._shared.clear()
        self._rewind_to.clear()
        self._rewind_paused.clear()  # Faust's recovery resumes the stream partitions itself

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        self._new_generation()
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Any], generation_id: int = 0) -> None:
        self._new_generation()
        await super().on_partitions_assigned(assigned, generation_id)


def _offsets_text(offsets: Mapping[Any, int | None]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in sorted(offsets.items()))


class IdempotentTransport(_FaustTransport):  # type: ignore[misc]
    """The platform's transport: idempotent producer, rewinding consumer (scheme smartcity://)."""

    Producer = _IdempotentProducer
    Consumer = RewindingConsumer


TRANSPORTS.aliases["smartcity"] = "smartcity.streams.transport:IdempotentTransport"


