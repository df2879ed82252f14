"""What keeps wifi's outputs a function of the input log: session lateness judged against the
session's own AP's earlier sessions (one partition, log order), never against how far the site's
heartbeats (another topic) had been read; each record written to its own partition's changelog;
a status made of one moment's state."""

from __future__ import annotations

from wifi_telemetry.config import WifiConfig
from wifi_telemetry.core.domain import Sample
from wifi_telemetry.core.processor import SessionEvent, SiteProcessor, watermark_key, write_rank
from wifi_telemetry.core.published import ap_view, view_as_of_now
from wifi_telemetry.core.windows import USERS, bucket_key, distinct_key

from .test_wifi_site import T0, sess, tele

SITE = "alun-alun"


def _counts(events: list[Sample | SessionEvent], config: WifiConfig) -> dict[str, int]:
    """Unique users of every minute and hour the site still keeps at the end."""
    proc = SiteProcessor(config, {})
    for event in events:
        if isinstance(event, Sample):
            proc.on_telemetry(event)
        else:
            proc.on_session(event)
    site = proc.load_site(SITE)
    return {key: proc.distinct_count(SITE, USERS, key) for key in sorted(site.distinct)}


def test_a_sessions_lateness_does_not_depend_on_how_far_the_heartbeats_were_read() -> None:
    # Ten minutes of one AP: a heartbeat and a new user every 10 s, on two topics. Read
    # together, or all heartbeats first (the session topic's reader fell behind): the same users.
    config = WifiConfig(allowed_lateness_s=120)
    beats: list[Sample | SessionEvent] = [tele("ap-1", n + 1, T0 + 10 * n) for n in range(60)]
    sessions: list[Sample | SessionEvent] = [sess("ap-1", n, T0 + 10 * n + 1) for n in range(60)]
    together = [event for pair in zip(beats, sessions, strict=True) for event in pair]
    read_together, beats_first = _counts(together, config), _counts(beats + sessions, config)
    assert read_together == beats_first
    assert read_together[bucket_key("minute", int(T0) + 360)] == 6  # kept, closed by the heartbeats
    assert read_together[bucket_key("hour", int(T0))] == 60


def test_a_session_is_late_behind_its_own_aps_newer_sessions() -> None:
    proc = SiteProcessor(WifiConfig(allowed_lateness_s=120), {})
    assert proc.on_session(sess("ap-1", 1, T0 + 600)).outcome == "applied"
    late = proc.on_session(sess("ap-1", 2, T0 + 5))  # its minute closed 535 s before ap-1's newest
    assert late.outcome == "applied" and late.late_windows == 1
    other = proc.on_session(sess("ap-2", 3, T0 + 5))  # ap-2 has not moved on: on time
    assert other.outcome == "applied" and other.late_windows == 0
    assert proc.distinct_count(SITE, USERS, bucket_key("minute", int(T0))) == 1
    assert proc.distinct_count(SITE, USERS, bucket_key("hour", int(T0))) == 3


def test_the_session_watermarks_are_stored_after_the_members_they_follow() -> None:
    # A crash keeps a prefix of the writes: a surviving watermark means its additions survived.
    shard = distinct_key(SITE, USERS, bucket_key("hour", int(T0)), 0)
    assert write_rank(watermark_key(SITE)) > write_rank(shard)
    store: dict[str, object] = {}
    SiteProcessor(WifiConfig(), store).on_session(sess("ap-1", 1, T0 + 5))
    assert store[watermark_key(SITE)] == {"id": SITE, "t": {"ap-1": T0 + 5}, "p": -1}
    assert list(store).index(watermark_key(SITE)) == len(store) - 1


class _PartitionedDict(dict[str, object]):
    """A store that, like the service's table writer, places each write on `partition`."""

    def __init__(self) -> None:
        super().__init__()
        self.partition = -1
        self.placed: dict[str, int] = {}

    def __setitem__(self, key: str, value: object) -> None:
        self.placed[key] = self.partition
        super().__setitem__(key, value)


def test_a_batch_across_partitions_writes_each_record_on_its_own_partition() -> None:
    # Written on the partition of the batch's last event, a record would be recovered from
    # another partition's changelog, where an old value of it could win after a restart.
    store = _PartitionedDict()
    proc = SiteProcessor(WifiConfig(), store, write_behind=True)
    for partition, sample in ((5, tele("ap-mpp-1", 1, T0, site="mpp")),
                              (2, tele("ap-tuj-1", 1, T0, site="taman-usman-janatin"))):
        store.partition = partition
        proc.on_telemetry(sample, partition)
    proc.flush()
    assert store.placed == {"site/mpp": 5, "i/ap-mpp-1": 5, "site/taman-usman-janatin": 2,
                            "i/ap-tuj-1": 2}
    assert store.partition == 2  # the caller's own setting is left as it was


def test_a_view_of_a_state_that_moved_on_is_made_again_before_it_is_published() -> None:
    # The timer makes every AP's view, then sends them one by one; meanwhile readings go on
    # being applied to the same state. A silent view sent later must be of the state then.
    proc = SiteProcessor(WifiConfig(), {})
    state = proc.on_telemetry(tele("ap-1", 1, T0)).state
    clock = T0 + 1000
    early = ap_view(proc.model, state, clock)
    assert view_as_of_now(proc.model, early, clock) is early
    proc.on_telemetry(tele("ap-1", 2, T0 + 10))
    again = view_as_of_now(proc.model, early, clock)
    assert early.health_since == T0 + 90 and again.health_since == T0 + 100
    assert again.as_of == state.last_seen == T0 + 10
