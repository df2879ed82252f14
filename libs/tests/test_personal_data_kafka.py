"""The data-key store on the real broker: restart, erasure, key rotation, a wrong or missing KEK."""

from __future__ import annotations

import asyncio
import base64

import pytest

from smartcity.personal_data.keyring import Keyring, KeyringError, new_kek_text
from smartcity.personal_data.keystore import DataKeyStore
from smartcity.personal_data.keytopic import DataKeyTopic
from smartcity.settings import PlatformSettings
from smartcity.testing import consume_all
from smartcity.v1 import requests_pb2 as pb

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]
SITI = pb.Reporter(name="Siti Rahayu", phone="+62 812 3456 7890")


def kek() -> bytes:
    return base64.b64decode(new_kek_text())


async def started(settings: PlatformSettings, ring: Keyring) -> DataKeyTopic:
    topic = DataKeyTopic(settings, DataKeyStore(ring))
    try:
        await topic.start(timeout_s=30)
    except BaseException:
        await topic.stop()
        raise
    return topic


async def test_keys_survive_restarts_rotate_and_die_by_tombstone(kafka_bootstrap: str,
                                                                 topic_prefix: str) -> None:
    settings = PlatformSettings("gateway", kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    k1, k2 = kek(), kek()
    first = await started(settings, Keyring({"k1": k1}, "k1"))
    try:
        await first.ensure_key("subj-a")
        await first.ensure_key("subj-a")  # one key per subject
        await first.ensure_key("subj-b")
        sealed = first.store.seal(SITI, "subj-a", "req-1")
        other = first.store.seal(SITI, "subj-b", "req-2")
    finally:
        await first.stop()
    records = await consume_all(kafka_bootstrap, first.topic)
    keys = [r.key for r in records]
    assert sum(k.startswith(b"subj-a/") for k in keys) == 1 and b"kek-check:k1" in keys
    assert all(b"Siti" not in (r.value or b"") for r in records)

    # A keyring whose k1 is another key, or that lacks k1: the process must not start.
    with pytest.raises(KeyringError, match="'k1' in the keyring is not the key"):
        await started(settings, Keyring({"k1": kek()}, "k1"))
    with pytest.raises(KeyringError, match="KEK 'k1' is missing from the keyring, and 2 data key"):
        await started(settings, Keyring({"k2": k2}, "k2"))

    # Rotation: k2 becomes active, data under k1 still reads; rewrapping lets k1 go.
    rotated = await started(settings, Keyring({"k1": k1, "k2": k2}, "k2"))
    try:
        assert rotated.store.open(sealed, "req-1") == SITI
        await rotated.ensure_key("subj-c")
        made = rotated.store.record("subj-c")
        assert made is not None and made.kek_id == "k2"
        assert await rotated.rewrap_old_keys() == 2
        assert await rotated.destroy("subj-b") is True
        assert await rotated.destroy("subj-b") is False  # nothing left to destroy
        assert rotated.store.open(other, "req-2") is None
    finally:
        await rotated.stop()

    retired = await started(settings, Keyring({"k2": k2}, "k2"))
    try:
        assert retired.store.open(sealed, "req-1") == SITI
        assert retired.store.open(other, "req-2") is None  # erased for good, after a restart too
        await retired.touch()
    finally:
        await retired.stop()


async def test_concurrent_submits_make_one_key_per_subject(kafka_bootstrap: str, topic_prefix: str) -> None:
    """Submits of many contacts at once, each contact twice: every subject gets one key, made
    by exactly one of its two callers, whatever the interleaving of their publishes."""
    settings = PlatformSettings("gateway", kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    keys = await started(settings, Keyring({"k1": kek()}, "k1"))
    subjects = [f"subj-{n}" for n in range(20)]
    try:
        made = await asyncio.gather(*[keys.ensure_key(s) for s in subjects for _ in range(2)])
        assert [made[2 * n] + made[2 * n + 1] for n in range(len(subjects))] == [1] * len(subjects)
        assert all(keys.store.record(s) is not None for s in subjects)
    finally:
        await keys.stop()
    records = await consume_all(kafka_bootstrap, keys.topic)
    for subject in subjects:
        assert sum(r.key.startswith(f"{subject}/".encode()) for r in records) == 1, subject


async def test_an_idle_follower_waits_long_and_hears_another_replicas_key(kafka_bootstrap: str,
                                                                        topic_prefix: str) -> None:
    """A replica that gathers other replicas' keys (follow_wait_ms) holds its fetches long while
    no key comes (not one fetch per gathering wait), and still learns a key another replica
    makes; once keys come it gathers again."""
    settings = PlatformSettings("gateway", kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    ring = Keyring({"k1": kek()}, "k1")
    maker = await started(settings, ring)
    follower = DataKeyTopic(settings, DataKeyStore(ring), follow_wait_ms=20)
    await follower.start(timeout_s=30)
    try:
        fetcher = follower._consumer._fetcher  # type: ignore[union-attr]
        for _ in range(100):  # the follower's first empty read
            if fetcher._fetch_min_bytes == 1:
                break
            await asyncio.sleep(0.1)
        assert (fetcher._fetch_max_wait_ms, fetcher._fetch_min_bytes) == (500, 1)
        await maker.ensure_key("subj-idle")
        for _ in range(100):
            if follower.store.record("subj-idle") is not None:
                break
            await asyncio.sleep(0.1)
        assert follower.store.record("subj-idle") is not None
    finally:
        await follower.stop()
        await maker.stop()
