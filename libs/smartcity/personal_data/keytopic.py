"""The data-key store on Kafka: requests.data-keys.v1 (compacted, key "<subject id>/<data key
id>"), read at start.

    start:  read the topic to its end ──► DataKeyStore ──► verify the keyring (wrong or missing
            KEK: KeyringError, the process stops) ──► publish the active KEK's kek-check if new
    live:   follow the topic (keys made or destroyed by another replica)
    writes: a new data key is published (acks=all) before anything is sealed with it; an
            erasure publishes a tombstone before the caller hears it is done

No consumer group: every process reads the whole (small) topic, like the gateway's views.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from smartcity import topic_names
from smartcity.codec import DecodeError, ProtoCodec
from smartcity.kafka import make_consumer, make_producer
from smartcity.personal_data.keystore import DataKeyStore, kek_check_subject, record_key
from smartcity.settings import PlatformSettings
from smartcity.topics import load_catalogue
from smartcity.v1 import requests_pb2

log = logging.getLogger(__name__)

DATA_KEYS_TOPIC = topic_names.REQUESTS_DATA_KEYS
CODEC = ProtoCodec(requests_pb2.DataKeyRecord)
# With follow_wait_ms: more than a fetch of keys ever holds, so the wait decides.
_FOLLOW_MIN_BYTES = 1024 * 1024
# While no key comes (a fetch came back empty): the broker holds a fetch this long and answers
# at the first key. Gathering with a 20 ms hold when nothing comes was 50 empty fetches a
# second per gateway; idle, this is two, and the first key after a quiet spell is answered at
# once. After a fetch that brought keys, the follower gathers again.
_IDLE_WAIT_MS = 500


class DataKeyTopic:
    """Keeps a DataKeyStore in step with its topic and publishes to it."""

    def __init__(self, settings: PlatformSettings, store: DataKeyStore, *,
                 follow_wait_ms: int | None = None) -> None:
        self.store = store
        self._settings = settings
        # Live, the broker holds each fetch up to this long to gather other replicas' keys (one
        # fetch per key otherwise: at 200 submits/s, 200 fetches/s of this process's own keys).
        # None: a fetch returns as soon as a record is there.
        self._follow_wait_ms = follow_wait_ms
        self.topic = load_catalogue()[DATA_KEYS_TOPIC].full_name(settings.topic_prefix)
        # A submit waits on its key's publish: it goes out at once (no 5 ms linger for company).
        self._producer = make_producer(settings, client_id=f"{settings.service_name}-data-keys",
                                       linger_ms=0)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        # The publish of each subject's new key in flight: a second submit of the same contact
        # waits for it instead of making another key; other subjects' publishes go on meanwhile.
        self._creating: dict[str, asyncio.Future[None]] = {}
        # Offset of this process's last write per subject: older records read back later
        # must not undo it (a key destroyed here must not reappear from a lagging read).
        self._written: dict[str, int] = {}
        self.failed: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def start(self, timeout_s: float = 60.0) -> None:
        """Reads the topic to its end and checks the keyring; KeyringError when it does not fit."""
        await self._producer.start()
        batching = {} if self._follow_wait_ms is None else {
            "fetch_max_wait_ms": self._follow_wait_ms, "fetch_min_bytes": _FOLLOW_MIN_BYTES}
        consumer = make_consumer(self._settings, group_id=None,
                                 client_id=f"{self._settings.service_name}-data-keys", **batching)
        await consumer.start()
        self._consumer = consumer
        partitions = await self._partitions(consumer, timeout_s)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout_s
        while any([await consumer.position(tp) < end for tp, end in ends.items()]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {self.topic} to its end within {timeout_s:.0f} s")
            await self._read_batch(consumer)
        self.store.verify()
        check = self.store.kek_check_to_publish()
        if check is not None:
            await self._publish(check.subject_id, check)
            log.info("KEK %r is new on %s: published its kek-check", self.store.keyring.active_id, self.topic)
        log.info("data keys loaded: %d subjects, active KEK %r, keyring %s", len(self.store),
                 self.store.keyring.active_id, ", ".join(self.store.keyring.ids()))
        self._task = asyncio.create_task(self._follow(), name="data-keys")
        self._task.add_done_callback(self._on_done)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
        await self._producer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer, timeout_s: float) -> list[TopicPartition]:
        deadline = time.monotonic() + timeout_s
        while True:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(self.topic)
            if parts:
                return [TopicPartition(self.topic, p) for p in sorted(parts)]
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {self.topic} does not exist (create the catalogue's topics)")
            await asyncio.sleep(0.5)

    async def _read_batch(self, consumer: AIOKafkaConsumer) -> int:
        """Applies the next records (waiting up to half a second); returns how many."""
        batch = await consumer.getmany(timeout_ms=500, max_records=1000)
        read = 0
        for records in batch.values():
            read += len(records)
            for record in records:
                self._apply(record)
        return read

    def _apply(self, record: Any) -> None:
        key = record.key.decode("utf-8", "replace") if record.key else ""
        # Older than this process's last write of the key: must not undo it. The write itself
        # (same offset) was applied when published: not decoded and applied again.
        if not key or record.offset <= self._written.get(key, -1):
            return
        if record.value is None:
            self.store.apply(key, None)
            return
        try:
            self.store.apply(key, CODEC.decode(record.value))
        except DecodeError as exc:
            # Only the gateway writes this topic; a record it cannot read is skipped, not fatal.
            log.warning("skipping undecodable data key record at offset %d: %s", record.offset, exc)

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            read = await self._read_batch(self._consumer)
            if self._follow_wait_ms is not None:
                _hold_fetches(self._consumer, *((self._follow_wait_ms, _FOLLOW_MIN_BYTES) if read else
                                                (_IDLE_WAIT_MS, 1)))

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.failed.done():
            return
        exc = task.exception() or RuntimeError("the data key follower stopped")
        log.error("data key follower failed: %r", exc)
        self.failed.set_result(exc)

    async def _publish(self, key: str, record: Any | None) -> None:
        value = None if record is None else CODEC.encode(record)
        meta = await self._producer.send_and_wait(self.topic, key=key.encode(), value=value)
        self._written[key] = int(meta.offset)
        self.store.apply(key, record)

    # ---- what callers do

    async def ensure_key(self, subject_id: str) -> bool:
        """Makes sure the subject has a data key, publishing a new one if it has none (True)."""
        if subject_id in self.store:
            return False
        pending = self._creating.get(subject_id)
        if pending is not None:
            # Shielded, here and below: a caller that gives up must not cancel the publish others
            # wait on. A failed publish fails its waiters too (they retry their submits).
            await asyncio.shield(pending)
            return False
        creation = self._creating[subject_id] = asyncio.ensure_future(self._create_key(subject_id))
        await asyncio.shield(creation)
        return True

    async def _create_key(self, subject_id: str) -> None:
        try:
            record = self.store.new_key(subject_id)
            await self._publish(record_key(subject_id, record.data_key_id), record)
        finally:
            del self._creating[subject_id]

    async def destroy_key(self, subject_id: str, data_key_id: str) -> None:
        """Destroys one data key of a subject (the one a rejected submit made)."""
        await self._publish(record_key(subject_id, data_key_id), None)

    async def destroy(self, subject_id: str) -> bool:
        """Destroys every data key of the subject (tombstones); False when it had none left."""
        keys = self.store.keys_of(subject_id)
        for key in keys:
            await self._publish(key, None)
        return bool(keys)

    async def touch(self) -> None:
        """Rewrites the active KEK's kek-check: a write that lets the active segment roll on
        time, so destroyed keys are compacted away within the bound the catalogue states."""
        record = self.store.kek_check_record()
        if record is not None:
            await self._publish(kek_check_subject(self.store.keyring.active_id), record)

    async def rewrap_old_keys(self) -> int:
        """Rewraps every data key made under an older KEK with the active one (then the old KEK
        can leave the keyring). Returns how many."""
        count = 0
        for key, record in self.store.under_old_keks():
            await self._publish(key, self.store.rewrapped(record))
            count += 1
        return count

    async def run_touch(self, every_s: float) -> None:
        """touch() every `every_s` seconds, forever (a task of the process)."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.touch()
            except Exception as exc:  # the next round retries; compaction only waits longer
                log.warning("could not rewrite the kek-check on %s: %r", self.topic, exc)


def _hold_fetches(consumer: AIOKafkaConsumer, max_wait_ms: int, min_bytes: int) -> None:
    """How long the broker holds the consumer's next fetches, and for how many bytes. aiokafka
    has no public setter: where its fetcher lacks these attributes, nothing changes (the
    follower gathers with its configured wait, as before)."""
    fetcher: Any = getattr(consumer, "_fetcher", None)
    held = ("_fetch_max_wait_ms", "_fetch_min_bytes")
    if fetcher is not None and all(hasattr(fetcher, name) for name in held):
        fetcher._fetch_max_wait_ms = max_wait_ms
        fetcher._fetch_min_bytes = min_bytes
