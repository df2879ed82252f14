"""Site level: event-time windows, unique users, peaks, bytes, lateness, crash consistency."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from datetime import UTC, datetime
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from wifi_telemetry.config import HealthConfig, WifiConfig
from wifi_telemetry.core.domain import Sample
from wifi_telemetry.core.processor import CONNECT, DISCONNECT, SessionEvent, SiteProcessor, site_key
from wifi_telemetry.core.published import ap_view, site_stats, site_windows
from wifi_telemetry.core.windows import SESSIONS, USERS, bucket_start, windows_of

T0 = datetime(2025, 11, 28, 12, 0, tzinfo=UTC).timestamp()  # 19:00 WIB, a round hour


def user(n: int) -> str:
    return hashlib.sha256(f"user-{n}".encode()).hexdigest()


def tele(ap: str, seq: int, t: float, *, site: str = "alun-alun", clients: int = 3, rx: int = 0,
         tx: int = 0) -> Sample:
    return Sample(ap_id=ap, site_id=site, seq=seq, t=t, uptime_s=int(50_000 + t - T0), cpu=20.0, mem=40.0,
                  clients=clients, rx=rx, tx=tx)


def sess(ap: str, who: int, t: float, kind: str = CONNECT, *, sid: str | None = None,
         site: str = "alun-alun") -> SessionEvent:
    return SessionEvent(ap_id=ap, site_id=site, kind=kind, client_hash=user(who), t=t,
                        session_id=sid or f"s{who}-{int(t)}")


def stats_of(proc: SiteProcessor, site_id: str, window: str) -> dict[str, Any]:
    site = proc.load_site(site_id)
    views = {ap: ap_view(proc.model, s) for ap in site.aps if (s := proc.load_ap(ap)) is not None}
    key = site_windows(site, views, window, proc.config.allowed_lateness_s)[-1]
    stats = site_stats(site, views, key, proc.distinct_count(site_id, USERS, key),
                       proc.distinct_count(site_id, SESSIONS, key))
    return stats.__dict__


def test_windows_follow_local_time() -> None:
    wib = 7 * 3600
    midnight_wib = datetime(2025, 11, 28, 17, 0, tzinfo=UTC).timestamp()
    assert bucket_start(midnight_wib, 86400, wib) == midnight_wib
    assert bucket_start(midnight_wib - 1, 86400, wib) == midnight_wib - 86400
    assert bucket_start(midnight_wib + 3599.5, 3600, wib) == midnight_wib
    start = int(midnight_wib)
    assert windows_of(midnight_wib + 61, wib) == [f"minute:{start + 60}", f"hour:{start}", f"day:{start}"]


def test_unique_users_are_exact_and_sessions_count_once() -> None:
    proc = SiteProcessor(WifiConfig(), {})
    proc.on_telemetry(tele("ap-1", 1, T0))
    proc.on_telemetry(tele("ap-2", 1, T0))
    events = [sess("ap-1", 1, T0 + 5), sess("ap-2", 2, T0 + 6), sess("ap-1", 3, T0 + 7),
              sess("ap-2", 1, T0 + 70),                                    # user 1 again, other AP
              sess("ap-1", 1, T0 + 80, DISCONNECT, sid="s1-3605"),          # adds nothing new
              sess("ap-1", 4, T0 + 4000)]                                   # next hour
    outcomes = [proc.on_session(e).outcome for e in events]
    assert outcomes == ["applied"] * 4 + ["duplicate", "applied"]
    assert proc.on_session(events[1]).outcome == "duplicate"  # redelivered
    hour0 = f"hour:{int(T0)}"
    assert proc.distinct_count("alun-alun", USERS, hour0) == 3
    assert proc.distinct_count("alun-alun", SESSIONS, hour0) == 4
    assert proc.distinct_count("alun-alun", USERS, f"minute:{int(T0)}") == 3
    assert proc.distinct_count("alun-alun", USERS, f"minute:{int(T0) + 60}") == 1
    assert proc.distinct_count("alun-alun", USERS, f"day:{int(T0) - 19 * 3600}") == 4


def test_sessions_later_than_the_allowed_lateness_are_dropped() -> None:
    proc = SiteProcessor(WifiConfig(allowed_lateness_s=120), {})
    proc.on_telemetry(tele("ap-1", 1, T0 + 600))
    assert proc.on_session(sess("ap-1", 1, T0 + 450)).outcome == "applied"      # minute ended 90 s ago
    result = proc.on_session(sess("ap-1", 2, T0 + 5))                            # its minute is closed
    assert result.outcome == "applied" and result.late_windows == 1              # hour/day still open
    assert proc.distinct_count("alun-alun", USERS, f"minute:{int(T0)}") == 0
    assert proc.distinct_count("alun-alun", USERS, f"hour:{int(T0)}") == 2


def _interleavings(a: list[Sample], b: list[Sample]) -> list[list[Sample]]:
    """Every merge of two sequences that keeps each one's own order."""
    slots = range(len(a) + len(b))
    merges = []
    for picks in itertools.combinations(slots, len(b)):
        rest_a, rest_b = iter(a), iter(b)
        merges.append([next(rest_b) if i in picks else next(rest_a) for i in slots])
    return merges


def test_peak_is_the_busiest_minute_summed_over_aps_in_any_interleaving() -> None:
    ap1 = [tele("ap-1", 1, T0, clients=5), tele("ap-1", 2, T0 + 30, clients=4),
           tele("ap-1", 3, T0 + 60, clients=10)]
    ap2 = [tele("ap-2", 1, T0 + 10, clients=7), tele("ap-2", 2, T0 + 65, clients=1)]
    orders = _interleavings(ap1, ap2)
    assert len(orders) == 10
    for order in orders:
        proc = SiteProcessor(WifiConfig(), {})
        for event in order:
            proc.on_telemetry(event)
        hour = stats_of(proc, "alun-alun", "hour")
        minute = stats_of(proc, "alun-alun", "minute")
        assert hour["peak_clients"] == 12  # minute 0: 5 + 7; minute 1: 10 + 1
        assert minute["peak_clients"] == 11 and minute["clients_now"] == 11


def test_peak_does_not_depend_on_how_far_one_aps_data_lags_behind_the_others() -> None:
    # After a crash the by-site stream redelivers one AP's data long after its neighbours'
    # (event time): the minutes it reports into are already past the other AP's lateness.
    config = WifiConfig(allowed_lateness_s=120)
    ap1 = [tele("ap-1", i + 1, T0 + 10 * i, clients=3 + i % 5) for i in range(60)]
    ap2 = [tele("ap-2", i + 1, T0 + 10 * i + 5, clients=2 + (i * 7) % 6) for i in range(60)]
    in_time = sorted(ap1 + ap2, key=lambda s: s.t)
    lagging = [ap1[0], ap2[0], *ap1[1:], *ap2[1:]]  # ap-2 after all of ap-1, both known first

    def peaks(order: list[Sample]) -> dict[str, int]:
        proc = SiteProcessor(config, {})
        for event in order:
            proc.on_telemetry(event)
        return proc.load_site("alun-alun").peaks

    want = peaks(in_time)
    busiest: dict[float, dict[str, int]] = {}
    for sample in in_time:
        minute = busiest.setdefault(sample.t // 60, {})
        minute[sample.ap_id] = max(minute.get(sample.ap_id, 0), sample.clients)
    assert want[f"hour:{int(T0)}"] == max(sum(m.values()) for m in busiest.values())
    assert peaks(lagging) == want


def test_bytes_of_a_window_survive_the_aps_forgetting_it() -> None:
    proc = SiteProcessor(WifiConfig(allowed_lateness_s=0), {})
    for seq in range(1, 12):  # 11 heartbeats, 10 s apart, 1000 bytes each after the first
        for ap in ("ap-1", "ap-2"):
            proc.on_telemetry(tele(ap, seq, T0 + 10 * seq, rx=1000 * seq, tx=2000 * seq))
    ap1 = proc.load_ap("ap-1")
    assert ap1 is not None and f"minute:{int(T0)}" not in ap1.buckets  # retired into the site
    site = proc.load_site("alun-alun")
    assert site.closed[f"minute:{int(T0)}"] == {"ap-1": [4000, 8000], "ap-2": [4000, 8000]}
    hour = stats_of(proc, "alun-alun", "hour")
    assert (hour["rx_bytes"], hour["tx_bytes"]) == (2 * 10 * 1000, 2 * 10 * 2000)
    views = {ap: ap_view(proc.model, s) for ap in site.aps if (s := proc.load_ap(ap)) is not None}
    minute0 = site_stats(site, views, f"minute:{int(T0)}", 0, 0)
    assert (minute0.rx_bytes, minute0.tx_bytes) == (8000, 16000)


def test_availability_of_a_window_counts_the_silence() -> None:
    proc = SiteProcessor(WifiConfig(health=HealthConfig(heartbeat_tolerance_s=60)), {})
    # Gaps of 280 s and 290 s with a 60 s tolerance: down 80..300 and 370..600.
    for seq, t in enumerate([0, 10, 20, 300, 310, 600], start=1):
        proc.on_telemetry(tele("ap-1", seq, T0 + t))
    proc.on_telemetry(tele("ap-2", 1, T0))
    proc.on_telemetry(tele("ap-2", 2, T0 + 600))  # one long gap: down 540 of 600 s
    hour = stats_of(proc, "alun-alun", "hour")
    up = (600 - 220 - 230) + (600 - 540)
    assert abs(hour["availability_ratio"] - up / 1200) < 1e-9
    assert (hour["access_points_total"], hour["access_points_up"]) == (2, 2)


class RecordingStore(dict[str, Any]):
    """A dict that logs every write, tagged with the event being processed (the changelog)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[int, str, Any]] = []
        self.event = -1

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self.log.append((self.event, key, json.loads(json.dumps(value))))

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.log.append((self.event, key, None))


def normalized(store: dict[str, Any]) -> Any:
    return json.loads(json.dumps(dict(store), sort_keys=True))


def _events(seed: int) -> list[Sample | SessionEvent]:
    rng = random.Random(seed)
    counters: dict[str, int] = {}
    seqs: dict[str, int] = {}
    out: list[Sample | SessionEvent] = []
    for step in range(40):
        t = T0 + 15 * step
        for ap, site in (("ap-a1", "a"), ("ap-a2", "a"), ("ap-b1", "b")):
            if rng.random() < 0.1:
                continue  # a lost heartbeat: a seq gap
            seqs[ap] = seqs.get(ap, 0) + 1 + (rng.random() < 0.1)
            counters[ap] = counters.get(ap, 0) + rng.randint(0, 5000)
            out.append(tele(ap, seqs[ap], t + rng.uniform(0, 5), site=site, clients=rng.randint(0, 9),
                            rx=counters[ap], tx=3 * counters[ap]))
            if rng.random() < 0.5:
                out.append(sess(ap, rng.randint(1, 12), t + rng.uniform(0, 9),
                                rng.choice([CONNECT, DISCONNECT]), site=site))
    rng.shuffle(out)  # disorder across APs; the duplicates below come from redelivery
    return out + rng.sample(out, 15)


def _run(store: dict[str, Any], events: list[Sample | SessionEvent], start: int = 0) -> None:
    proc = SiteProcessor(WifiConfig(allowed_lateness_s=60, reorder_window_s=20), store)
    for index in range(start, len(events)):
        if isinstance(store, RecordingStore):
            store.event = index
        event = events[index]
        if isinstance(event, Sample):
            proc.on_telemetry(event, 2)
        else:
            proc.on_session(event, 2)


@settings(max_examples=40, deadline=None)
@example(seed=1, crash=0.0, survived=0.0078125)  # a crash between a new AP's site record and its index
@given(seed=st.integers(0, 1000), crash=st.floats(0, 1), survived=st.floats(0, 1))
def test_a_crash_at_any_point_then_replay_gives_the_same_state(seed: int, crash: float,
                                                               survived: float) -> None:
    events = _events(seed)
    full = RecordingStore()
    _run(full, events)
    # Events before `committed` were committed: all their writes are in the changelog. Of the
    # later ones' writes, some prefix made it before the kill (one partition: writes in order).
    committed = int(crash * len(events))
    first_lost = next((i for i, (event, _, _) in enumerate(full.log) if event >= committed), len(full.log))
    cut = first_lost + int(survived * (len(full.log) - first_lost))
    recovered: dict[str, Any] = {}
    for _, key, value in full.log[:cut]:
        if value is None:
            recovered.pop(key, None)
        else:
            recovered[key] = value
    _run(recovered, events, start=committed)  # redelivery of everything not committed
    assert normalized(recovered) == normalized(full)


def test_a_heartbeat_reports_the_bytes_its_counters_moved_by_for_the_traffic_counter() -> None:
    proc = SiteProcessor(WifiConfig(), {})
    first = proc.on_telemetry(tele("ap-1", 1, T0, rx=1_000, tx=500))
    second = proc.on_telemetry(tele("ap-1", 2, T0 + 10, rx=5_000, tx=2_500))
    again = proc.on_telemetry(tele("ap-1", 2, T0 + 10, rx=5_000, tx=2_500))  # a redelivery
    assert (first.rx_bytes, first.tx_bytes) == (0, 0)  # the first sample is the baseline
    assert (second.rx_bytes, second.tx_bytes) == (4_000, 2_000)
    assert (again.rx_bytes, again.tx_bytes) == (0, 0)


# -- the incremental bookkeeping behind the hot path equals looking at everything -------------


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 60), st.integers(0, 3)), min_size=1, max_size=60))
def test_the_sites_oldest_newest_heartbeat_equals_a_scan_of_its_aps(
        steps: list[tuple[int, float, int]]) -> None:
    """The heap of newest-heartbeat times gives what a scan of every AP of the site gives, with
    APs silent (in the data) past the hold left out: lateness 0, so the hold is MINUTES_HOLD_S."""
    from wifi_telemetry.core import processor as processor_module

    config = WifiConfig(allowed_lateness_s=0.0)
    proc = SiteProcessor(config, {})
    hold = processor_module.MINUTES_HOLD_S
    newest: dict[str, float] = {}
    clock_t = T0
    seqs: dict[str, int] = {}
    for ap_index, gap, jump in steps:
        ap = f"ap-{ap_index}"
        clock_t += gap + (hold * 1.5 if jump == 3 else 0)  # now and then a long silence of the others
        seqs[ap] = seqs.get(ap, 0) + 1
        proc.on_telemetry(tele(ap, seqs[ap], clock_t))
        newest[ap] = clock_t
        high = max(newest.values())
        want = min(t for t in newest.values() if t >= high - hold)
        clock = proc._clocks["alun-alun"]
        assert clock.oldest(config.allowed_lateness_s + hold) == want
        assert clock.newest == high


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["minute", "hour", "day"]), st.integers(0, 200),
                          st.sampled_from(["peak", "closed", "distinct"])), max_size=40),
       st.lists(st.integers(0, 400_000), min_size=1, max_size=10))
def test_pruning_from_the_expiry_heap_equals_checking_every_window(
        windows: list[tuple[str, int, str]], nows: list[int]) -> None:
    from wifi_telemetry.core.windows import SiteState, bucket_key, kept_for

    sizes = {"minute": 60, "hour": 3600, "day": 86400}
    site = SiteState("s")
    lateness = 600.0
    for now in sorted(nows):
        for window, index, kind in windows:
            key = bucket_key(window, int(T0) + index * sizes[window])
            if kind == "peak":
                site.raise_peak(key, index + 1)
            elif kind == "closed":
                site.keep_closed("ap", {key: [index, index]})
            else:
                site.note_distinct(key)
        t = T0 + now
        want_peaks = {k: v for k, v in site.peaks.items() if kept_for(k, t, lateness)}
        want_closed = {k: v for k, v in site.closed.items() if kept_for(k, t, lateness)}
        want_gone = [k for k in site.distinct if not kept_for(k, t, lateness)]
        want_distinct = [k for k in site.distinct if kept_for(k, t, lateness)]
        _, gone = site.prune(t, lateness)
        assert (site.peaks, site.closed, site.distinct, gone) == (want_peaks, want_closed, want_distinct,
                                                                 want_gone)
        assert site.distinct == sorted(site.distinct)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), write_behind=st.booleans())
def test_the_common_case_shortcut_leaves_the_store_the_general_path_leaves(seed: int,
                                                                          write_behind: bool) -> None:
    events = _events(seed)
    config = WifiConfig(allowed_lateness_s=60, reorder_window_s=20)
    stores: list[dict[str, Any]] = [{}, {}]
    for store, shortcut in zip(stores, (True, False), strict=True):
        proc = SiteProcessor(config, store, write_behind=write_behind)
        proc.model.shortcut = shortcut
        _apply_flushing(proc, events)
    assert normalized(stores[0]) == normalized(stores[1])


def _apply_flushing(proc: SiteProcessor, events: list[Sample | SessionEvent]) -> SiteProcessor:
    """Applies the events on partition 2, flushing every 7 and at the end."""
    for index, event in enumerate(events):
        if isinstance(event, Sample):
            proc.on_telemetry(event, 2)
        else:
            proc.on_session(event, 2)
        if index % 7 == 6:
            proc.flush()
    proc.flush()
    return proc


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 120), min_size=0, max_size=20), st.integers(0, 10_000), st.integers(0, 10_000))
def test_a_site_that_may_not_forget_minutes_for_the_newest_time_forgets_none_for_an_older_one(
        minutes: list[int], high_s: int, below_s: int) -> None:
    from wifi_telemetry.core.windows import SiteState, bucket_key

    lateness = 600.0
    site = SiteState("s")
    for index in minutes:
        site.note_minute_clients(bucket_key("minute", int(T0) + 60 * index), "ap", index)
    high = T0 + high_s
    before = {k: dict(v) for k, v in site.minutes.items()}
    if not site.may_forget_minutes(high, lateness):
        assert not site.forget_minutes(high - below_s, lateness)
        assert site.minutes == before
    else:  # it may: then the newest time itself forgets some
        assert site.forget_minutes(high, lateness)


def test_the_decoded_records_name_every_ap_and_site_written_and_read_as_the_store_holds_them() -> None:
    store: dict[str, Any] = {}
    proc = SiteProcessor(WifiConfig(), store)
    proc.on_telemetry(tele("ap-1", 1, T0), partition=2)
    proc.on_telemetry(tele("ap-9", 1, T0, site="pasar"), partition=5)
    aps, sites = proc.decoded_partitions()
    assert aps == {"ap-1": 2, "ap-9": 5} and sites == {"alun-alun": 2, "pasar": 5}
    site = proc.site_state("alun-alun")
    record = store[site_key("alun-alun")]
    assert site is not None and site.to_dict() == {k: v for k, v in record.items() if k != "ap"}
    ap1 = proc.ap_state("ap-1")
    assert ap1 is not None and record["ap"] == {"ap-1": ap1.to_list()}
    assert proc.site_state("nowhere") is None and site_key("nowhere") not in store

    # After a rebalance the processor forgets; what the store holds it reads again.
    proc.forget()
    assert proc.decoded_partitions() == ({}, {})
    again = proc.site_state("pasar")
    assert again is not None and again.partition == 5
    assert again.to_dict() == {k: v for k, v in store[site_key("pasar")].items() if k != "ap"}


def _as_legacy(store: dict[str, Any], proc: SiteProcessor) -> dict[str, Any]:
    """The store in the layout before APs moved into their site's record: a record per AP
    (`to_dict`), site records without "ap", no index records."""
    from wifi_telemetry.core.domain import AccessPointState

    out: dict[str, Any] = {}
    for key, value in store.items():
        if key.startswith("i/"):
            continue
        if key.startswith("site/"):
            out[key] = {k: v for k, v in value.items() if k != "ap"}
            for ap_id, entry in value["ap"].items():
                out[f"ap/{ap_id}"] = AccessPointState.from_list(entry, proc.model).to_dict()
        else:
            out[key] = value
    return out


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), cut=st.integers(0, 200), write_behind=st.booleans())
def test_a_store_of_the_layout_before_is_read_and_carries_on_as_the_new_one_would(
        seed: int, cut: int, write_behind: bool) -> None:
    # An existing deployment's table holds one record per AP: a new worker reads it and goes on
    # exactly as if it had always written the new layout, and deletes each AP's old record
    # once its site's record holds the AP.
    from wifi_telemetry.core.processor import stored_aps

    events = _events(seed)
    cut = min(cut, len(events))
    config = WifiConfig(allowed_lateness_s=60, reorder_window_s=20)

    def run(store: dict[str, Any], part: list[Any]) -> SiteProcessor:
        return _apply_flushing(SiteProcessor(config, store, write_behind=write_behind), part)

    always: dict[str, Any] = {}
    proc = run(always, events[:cut])
    run(always, events[cut:])
    migrated = _as_legacy(run({}, events[:cut]).store, proc)  # type: ignore[arg-type]
    run(migrated, events[cut:])
    assert stored_aps(proc.model, migrated.items()) == stored_aps(proc.model, always.items())
    sites = {k: {f: v for f, v in value.items() if f != "ap"} for k, value in always.items()
             if k.startswith("site/")}
    assert {k: {f: v for f, v in value.items() if f != "ap"} for k, value in migrated.items()
            if k.startswith("site/")} == sites
    assert {k: v for k, v in migrated.items() if k.startswith(("d/", "w/"))} == \
        {k: v for k, v in always.items() if k.startswith(("d/", "w/"))}
    want = stored_aps(proc.model, always.items())
    in_sites = {ap for k, v in migrated.items() if k.startswith("site/") for ap in v.get("ap", {})}
    for key in [k for k in migrated if k.startswith("ap/")]:  # left: APs not changed since the cut
        assert key[3:] not in in_sites and proc.model.load(migrated[key]) == want[key[3:]]
    for ap in want:  # and a fresh processor finds each one, in either layout
        assert SiteProcessor(config, migrated).load_ap(ap) == want[ap]


def test_an_ap_that_moves_to_another_site_carries_on_whichever_site_is_read_first() -> None:
    store: dict[str, Any] = {}
    proc = SiteProcessor(WifiConfig(), store, write_behind=True)
    proc.on_telemetry(tele("ap-1", 1, T0, site="pasar"))
    proc.on_telemetry(tele("ap-2", 1, T0, site="pasar"))
    proc.flush()
    proc.on_telemetry(tele("ap-1", 2, T0 + 10, site="alun-alun"))
    proc.flush()
    assert store["i/ap-1"]["s"] == "alun-alun"
    assert store["site/alun-alun"]["ap"]["ap-1"][6] == 2  # seq
    for first in ("pasar", "alun-alun"):
        again = SiteProcessor(WifiConfig(), store, write_behind=True)
        again.site_state(first)  # the other site's record read first or not
        result = again.on_telemetry(tele("ap-1", 3, T0 + 20, site="alun-alun"))
        assert result.outcome.name == "APPLIED" and result.state.last_seq == 3
    for order in (("pasar", "alun-alun"), ("alun-alun", "pasar")):
        # A restart takes the newer copy, whichever record it reads first.
        late = SiteProcessor(WifiConfig(), store, write_behind=True)
        for site_id in order:
            late.site_state(site_id)
        state = late.ap_state("ap-1")
        assert state is not None and state.last_seq == 2 and state.site_id == "alun-alun"
    # Only the site it left read (another AP of it reported): the copy there is not taken for
    # the AP's state, neither to publish nor to apply a reading for a third site to.
    stale = SiteProcessor(WifiConfig(), store, write_behind=True)
    stale.on_telemetry(tele("ap-2", 2, T0 + 20, site="pasar"))
    state = stale.ap_state("ap-1")
    assert state is not None and state.last_seq == 2 and state.site_id == "alun-alun"
    stale = SiteProcessor(WifiConfig(), store, write_behind=True)
    stale.site_state("pasar")
    result = stale.on_telemetry(tele("ap-1", 3, T0 + 20, site="taman"))
    assert result.outcome.name == "APPLIED" and result.state.last_seq == 3
    assert result.state.first_seen == T0 and result.skipped_gaps == 0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 1000))
def test_an_ap_state_survives_its_compact_form_and_json(seed: int) -> None:
    from wifi_telemetry.core.domain import AccessPointState

    proc = SiteProcessor(WifiConfig(allowed_lateness_s=60, reorder_window_s=20), {})
    for event in _events(seed):
        if isinstance(event, Sample):
            state = proc.on_telemetry(event).state
            again = AccessPointState.from_list(json.loads(json.dumps(state.to_list())), proc.model)
            assert again.to_dict() == state.to_dict()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 1000), every=st.integers(1, 12), write_behind=st.booleans(),
       move=st.booleans(), forget_at=st.integers(0, 300), clock_s=st.integers(0, 400),
       sessions_first=st.booleans())
def test_statistics_made_again_only_for_changed_windows_equal_those_made_from_scratch(
        seed: int, every: int, write_behind: bool, move: bool, *, forget_at: int, clock_s: int,
        sessions_first: bool) -> None:
    # The timer's pass keeps each window's numbers and makes them again only for the windows
    # the readings and sessions since the last pass changed: at every pass, whatever came in
    # between (disorder, duplicates, gaps, an AP moving site, a rebalance), they must equal the
    # statistics of every kept window made from the state as it is.
    from wifi_telemetry.config import WINDOWS
    from wifi_telemetry.core.published import SiteStatsCache

    events = _events(seed)
    if move:  # ap-a2 reports for site b from half-way on
        half = len(events) // 2
        events = events[:half] + [e._replace(site_id="b") for e in events[half:]]
    if sessions_first:  # read far ahead of the heartbeats: windows kept past the newest heartbeat
        events = sorted(events, key=lambda e: isinstance(e, Sample))
    config = WifiConfig(allowed_lateness_s=60, reorder_window_s=20)
    proc = SiteProcessor(config, {}, write_behind=write_behind)
    cache = SiteStatsCache()
    passes = 0
    for index, event in enumerate(events):
        if isinstance(event, Sample):
            proc.on_telemetry(event, 2)
        else:
            proc.on_session(event, 2)
        if index == forget_at:
            proc.flush()
            proc.forget()
        if index % every != every - 1 and index != len(events) - 1:
            continue
        proc.flush()
        changes = proc.take_changes()
        if changes is None:
            cache.clear()
        clock = T0 + clock_s + 15 * index / 3  # sometimes past an AP's silence
        for site_id in ("a", "b"):
            site = proc.site_state(site_id)
            if site is None:
                continue
            views = {ap: ap_view(proc.model, s, clock) for ap in site.aps
                     if (s := proc.ap_state(ap)) is not None}
            keys = [k for window, _ in WINDOWS for k in site_windows(site, views, window, 60)]

            def counts(key: str, site_id: str = site_id) -> tuple[int, int]:
                return proc.distinct_count(site_id, USERS, key), proc.distinct_count(site_id, SESSIONS, key)

            made = cache.stats(site, views, keys, None if changes is None else changes.get(site_id), counts)
            assert made == [site_stats(site, views, key, *counts(key)) for key in keys]
            # The counts kept up to date by the additions are those of the store's shards.
            for key in [*keys, *site.distinct]:
                for kind in (USERS, SESSIONS):
                    kept = proc.distinct_count(site_id, kind, key)
                    assert kept == proc.stored_distinct_count(site_id, kind, key)
            passes += 1
    assert passes > 0


def test_an_older_window_is_published_again_only_when_its_own_numbers_change() -> None:
    import dataclasses

    from wifi_telemetry.core.published import SiteStats, changed_stats

    def window(start: int, users: int, clients_now: int) -> SiteStats:
        return SiteStats("s", "minute", start, start + 60, users, 5, clients_now, 100, 200, 1.0, 3, 3, 1)

    said: dict[Any, Any] = {}
    first = [window(0, 1, 7), window(60, 2, 7), window(120, 3, 7)]
    assert changed_stats(said, first) == first
    # Only the site's numbers now changed: the newest window says so, the older ones are left.
    now_moved = [dataclasses.replace(s, clients_now=9) for s in first]
    assert changed_stats(said, now_moved) == [now_moved[2]]
    assert changed_stats(said, now_moved) == []
    # An older window's own numbers changed (a late session): it, and the newest after it.
    late = [dataclasses.replace(now_moved[0], unique_users=4), *now_moved[1:]]
    assert changed_stats(said, late) == [late[0], late[2]]
    # A window no longer kept is forgotten; one starting is published.
    moved_on = [*late[1:], window(180, 1, 9)]
    assert changed_stats(said, moved_on) == [moved_on[2]] and sorted(said) == [60, 120, 180]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 1000), firing=st.booleans())
def test_the_shared_compact_form_encodes_as_the_copied_one(seed: int, firing: bool) -> None:
    # firing: a cpu threshold every reading fails, with no tolerance (reasons to show).
    health = HealthConfig(cpu_threshold_percent=10.0, cpu_tolerance_s=0.0) if firing else HealthConfig()
    proc = SiteProcessor(WifiConfig(health=health, allowed_lateness_s=60, reorder_window_s=20), {})
    for event in _events(seed):
        if isinstance(event, Sample):
            state = proc.on_telemetry(event).state
            assert json.dumps(state.to_list(shared=True)) == json.dumps(state.to_list())
            assert ap_view(proc.model, state).reasons == state.health.reasons()
