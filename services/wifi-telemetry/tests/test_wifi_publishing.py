"""The publishing timer's shortcut (core/publishing.py): a tick that looks only at the APs due and
the sites that changed publishes, byte for byte, what a pass over every AP and site publishes."""

from __future__ import annotations

import copy
import hashlib
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from wifi_telemetry.adapters.messages import site_stats_proto, status_proto
from wifi_telemetry.config import HealthConfig, WifiConfig
from wifi_telemetry.core import publishing
from wifi_telemetry.core.domain import Sample
from wifi_telemetry.core.processor import CONNECT, SessionEvent, SiteProcessor, stored_ids
from wifi_telemetry.core.published import (
    ApView,
    SiteStatsCache,
    ap_view,
    change_view,
    kept_windows,
    site_windows,
)
from wifi_telemetry.core.publishing import Publisher, TickOutput

T0 = datetime(2025, 11, 28, 16, 58, tzinfo=UTC).timestamp()  # 23:58 WIB: the day turns during a run
OWNED = {0}
CONFIG = WifiConfig(health=HealthConfig(heartbeat_tolerance_s=12.0), allowed_lateness_s=60.0,
                    reorder_window_s=10.0, status_interval_s=20.0, stats_interval_s=5.0)
SITES = {"a": ["ap-a1", "ap-a2", "ap-a3"], "b": ["ap-b1", "ap-b2"], "c": ["ap-c1"]}


class _Side:
    """One processor and its timer, fed the same events as the other side."""

    def __init__(self, incremental: bool) -> None:
        self.store: dict[str, Any] = {}
        self.processor = SiteProcessor(CONFIG, self.store, write_behind=True)
        self.publisher = Publisher(CONFIG, self.processor, incremental=incremental)

    def apply(self, events: list[Sample | SessionEvent], now: float) -> dict[str, bytes]:
        changes: list[ApView] = []
        aps = set()
        for event in events:
            if isinstance(event, Sample):
                result = self.processor.on_telemetry(event, 0)
                aps.add(event.ap_id)
                changes.extend(change_view(copy.deepcopy(result.state), c) for c in result.changes)
            else:
                self.processor.on_session(event, 0)
        self.processor.flush()
        sent = {view.state.ap_id: status_proto(view, now).SerializeToString(deterministic=True)
                for view in changes}
        self.publisher.batch_published(changes, aps, now)
        return sent

    def tick(self, now: float, live: bool, generation: int) -> tuple[bool, dict[str, Any]]:
        def all_ids() -> tuple[list[str], list[str]]:  # as the service's: the table's, and the decoded
            stored, decoded = stored_ids(self.store.items()), self.processor.decoded_partitions()
            aps, sites = stored[0] | decoded[0], stored[1] | decoded[1]
            return [a for a, p in aps.items() if p in OWNED], [s for s, p in sites.items() if p in OWNED]

        out: TickOutput = self.publisher.tick(now, live, OWNED, generation, all_ids)
        statuses = {v.state.ap_id: status_proto(v, now).SerializeToString(deterministic=True)
                    for v in out.statuses}
        stats: dict[str, list[bytes]] = {}  # per Kafka key, in order (the last one stays)
        for s in out.stats:
            stats.setdefault(s.key, []).append(site_stats_proto(s, now).SerializeToString(deterministic=True))
        gauges: dict[str, list[tuple[str, int, int]]] = {}  # per site: what its gauges are set from
        for v in out.gauge_views:
            gauges.setdefault(v.state.site_id, []).append((v.state.ap_id, int(v.health), v.clients))
        return out.full, {"pass": out.stats_pass, "statuses": statuses, "stats": stats,
                          "gauges": {site: sorted(entries) for site, entries in gauges.items()}}


def _user(n: int) -> str:
    return hashlib.sha256(f"user-{n}".encode()).hexdigest()


Check = Callable[[int, dict[str, Any], dict[str, Any]], None]


def _run(seed: int, steps: int, check: Check) -> dict[str, int]:
    """Drives the shortcut and the full pass over the same random input; `check` compares what
    each published at each step. Returns what the run went through."""
    rng = random.Random(seed)
    quick, full = _Side(incremental=True), _Side(incremental=False)
    seqs: dict[str, int] = {}
    home = {ap: site for site, aps in SITES.items() for ap in aps}
    now, live, generation = T0, True, 1
    seen = {"shortcut ticks": 0, "silences": 0, "moves": 0}
    # Per AP, how likely it reports in a step: some fall silent for a while, some come back.
    chatty = {ap: rng.choice([0.0, 0.3, 0.9]) for ap in home}
    for step in range(steps):
        now += rng.choice([0.5, 1.0, 1.0, 2.0, 3.0, 5.0])  # steps that can land on a deadline
        roll = rng.random()
        if roll < 0.02:
            live = not live
        elif roll < 0.04:  # a rebalance: the service's processor reads its records again
            generation += 1
            if roll < 0.035:
                for side in (quick, full):
                    side.processor.forget()
        elif roll < 0.05:
            ap = rng.choice(sorted(home))
            home[ap] = rng.choice(sorted(SITES))
            seen["moves"] += 1
        if rng.random() < 0.1:
            ap = rng.choice(sorted(home))
            chatty[ap] = rng.choice([0.0, 0.3, 0.9])
        events: list[Sample | SessionEvent] = []
        for ap in sorted(home):
            if rng.random() >= chatty[ap]:
                continue
            seqs[ap] = seqs.get(ap, 0) + 1 + (rng.random() < 0.05)  # sometimes a gap
            t = now - rng.choice([0.0, 0.5, 1.0, 30.0 if rng.random() < 0.05 else 0.0])
            events.append(Sample(ap_id=ap, site_id=home[ap], seq=seqs[ap], t=t, uptime_s=int(t - T0) + 100,
                                 cpu=rng.choice([20.0, 20.0, 99.0]), mem=40.0, clients=rng.randint(0, 6),
                                 rx=seqs[ap] * 1000, tx=seqs[ap] * 3000))
            if rng.random() < 0.3:
                who = rng.randint(1, 9)
                events.append(SessionEvent(ap_id=ap, site_id=home[ap], kind=CONNECT, client_hash=_user(who),
                                           t=t - rng.choice([0.0, 20.0]), session_id=f"s{who}-{step}"))
        if events and rng.random() < 0.2:
            events.append(rng.choice(events))  # a redelivery
        if events:
            check(step, {"batch": quick.apply(events, now)}, {"batch": full.apply(events, now)})
        was_full, quick_out = quick.tick(now, live, generation)
        _, full_out = full.tick(now, live, generation)
        check(step, quick_out, full_out)
        if quick_out["pass"] and not was_full:
            seen["shortcut ticks"] += 1
        seen["silences"] += sum(1 for v in quick_out["statuses"].values() if b"no heartbeat" in v)
    return seen


def _equal(step: int, quick: dict[str, Any], full: dict[str, Any]) -> None:
    # The gauges of the sites the shortcut looked at (the others' did not change).
    gauges = quick.pop("gauges", {})
    assert gauges == {site: entries for site, entries in full.pop("gauges", {}).items() if site in gauges}
    assert quick == full, f"step {step}"


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
@example(seed=1057)  # a moved AP's stale copy in its old site's record, published after a re-read
def test_the_shortcut_publishes_what_a_pass_over_everything_publishes(seed: int) -> None:
    _run(seed, 160, _equal)


def test_the_runs_go_through_silences_moves_and_shortcut_passes() -> None:
    # What the property test above relies on happening in its runs.
    totals = {"shortcut ticks": 0, "silences": 0, "moves": 0}
    for seed in range(10):
        for name, count in _run(seed, 160, _equal).items():
            totals[name] += count
    assert all(count > 5 for count in totals.values()), totals


def _fails_somewhere() -> bool:
    for seed in range(40):
        try:
            _run(seed, 160, _equal)
        except AssertionError:
            return True
    return False


@pytest.mark.parametrize("broken", ["no silence marks", "no moved-AP sites", "no look after a flip",
                                    "deadline on the moment", "newest window not made"])
def test_the_comparison_fails_when_the_shortcut_is_broken(broken: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    if broken == "no silence marks":  # a site whose AP fell silent is not looked at
        record = Publisher.record_status

        def record_unmarked(self: Publisher, view: ApView, now: float) -> None:
            touched = dict(self._touched)
            record(self, view, now)
            self._touched = touched

        monkeypatch.setattr(Publisher, "record_status", record_unmarked)
    elif broken == "no moved-AP sites":
        monkeypatch.setattr(Publisher, "_mixed", property(lambda self: set(), lambda self, value: None),
                            raising=False)
    elif broken == "no look after a flip":
        tick = Publisher.tick

        def tick_without_flip(self: Publisher, now: float, live: bool, *args: Any) -> TickOutput:
            self.live = live
            return tick(self, now, live, *args)

        monkeypatch.setattr(Publisher, "tick", tick_without_flip)
    elif broken == "newest window not made":  # only the windows noted: the site's "now" goes stale
        stats = SiteStatsCache.stats

        def stats_of_noted(self: SiteStatsCache, *args: Any, always: set[str] | None = None) -> Any:
            return stats(self, *args, always=None if always is None else set())

        monkeypatch.setattr(SiteStatsCache, "stats", stats_of_noted)
    else:
        monkeypatch.setattr(publishing, "DEADLINE_EARLY_S", 0.0)
    assert _fails_somewhere()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_the_windows_of_every_size_at_once_are_those_of_each_size(seed: int) -> None:
    side = _Side(incremental=True)
    rng = random.Random(seed)
    for step in range(60):
        ap = rng.choice(SITES["a"])
        t = T0 + 7 * step - rng.choice([0, 0, 50, 200])
        side.processor.on_telemetry(Sample(ap, "a", step + 1, t, 100, 20.0, 40.0, 3, step, step), 0)
        site = side.processor.site_state("a")
        assert site is not None
        views = {a: _view(side, a) for a in site.aps}
        for lateness in (0.0, 60.0, 600.0):
            together = kept_windows(site, views, lateness)
            assert together == {w: site_windows(site, views, w, lateness) for w in ("minute", "hour", "day")}


def _view(side: _Side, ap_id: str) -> ApView:
    state = side.processor.ap_state(ap_id)
    assert state is not None
    return ap_view(side.processor.model, state)
