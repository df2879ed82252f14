"""Per-AP domain: health tolerance edges, recovery, silence, counters, duplicates, ordering."""

from __future__ import annotations

import dataclasses
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.health import Health
from smartcity.ordering import Arrival
from wifi_telemetry.config import HealthConfig, WifiConfig
from wifi_telemetry.core.domain import AccessPointModel, AccessPointState, Sample, encoded_checks
from wifi_telemetry.core.published import ap_view

T0 = 1_764_300_000.0  # 2025-11-28T03:20:00Z, a round minute


def sample(seq: int, t: float | None = None, *, cpu: float = 20.0, mem: float = 50.0, clients: int = 5,
           rx: int | None = None, tx: int | None = None, uptime: int | None = None) -> Sample:
    t = T0 + 10 * (seq - 1) if t is None else t
    return Sample(ap_id="ap-x-01", site_id="x", seq=seq, t=t,
                  uptime_s=int(100_000 + (t - T0)) if uptime is None else uptime,
                  cpu=cpu, mem=mem, clients=clients,
                  rx=1_000_000 + 1000 * seq if rx is None else rx,
                  tx=5_000_000 + 4000 * seq if tx is None else tx)


def model(**health: float) -> AccessPointModel:
    return AccessPointModel(WifiConfig(health=HealthConfig(**health)))  # type: ignore[arg-type]


def run(m: AccessPointModel, samples: list[Sample]) -> tuple[AccessPointState, list[Arrival]]:
    state = m.new_state(samples[0])
    outcomes = [m.offer(state, s).outcome for s in samples]
    return state, outcomes


def health(state: AccessPointState) -> Health:
    return state.health.health  # a call, so the type checker does not narrow between asserts


def comparable(state: AccessPointState) -> dict[str, object]:
    return json.loads(json.dumps(state.to_dict()))  # type: ignore[no-any-return]


# -- health checks ---------------------------------------------------------------------------------

def test_cpu_high_becomes_problem_exactly_at_its_tolerance() -> None:
    m = model(cpu_tolerance_s=300)
    state = m.new_state(sample(1))
    m.offer(state, sample(1, T0, cpu=50))
    for i, t in enumerate(range(10, 300, 10), start=2):  # failing from T0+10 to T0+300 (290 s)
        result = m.offer(state, sample(i, T0 + t, cpu=95))
        assert result.changes == []
    assert health(state) == Health.OK
    result = m.offer(state, sample(31, T0 + 310, cpu=95))  # 300 s since the first failing sample
    assert [c.after for c in result.changes] == [Health.PROBLEM]
    assert result.changes[0].at == T0 + 310
    reason = result.changes[0].reasons[0]
    assert (reason.check, reason.severity, reason.since) == ("cpu", Health.PROBLEM, T0 + 10)
    assert "95.0% > 90%" in reason.detail


def test_cpu_at_the_threshold_is_not_failing() -> None:
    m = model(cpu_tolerance_s=0)
    state, _ = run(m, [sample(i, cpu=90.0) for i in range(1, 5)])
    assert health(state) == Health.OK
    state, _ = run(m, [sample(i, cpu=90.1) for i in range(1, 5)])
    assert health(state) == Health.PROBLEM


def test_memory_check_uses_its_own_threshold_and_tolerance() -> None:
    m = model(memory_threshold_percent=95, memory_tolerance_s=60)
    state, _ = run(m, [sample(i, mem=96.0) for i in range(1, 7)])  # 50 s of failing
    assert health(state) == Health.OK
    m.offer(state, sample(7, mem=96.0))  # 60 s
    assert health(state) == Health.PROBLEM
    assert [r.check for r in state.health.reasons()] == ["memory"]


def test_recovery_is_reported_after_the_recovery_time() -> None:
    m = model(cpu_tolerance_s=0, cpu_recovery_s=30)
    state = m.new_state(sample(1))
    m.offer(state, sample(1, cpu=99))
    assert health(state) == Health.PROBLEM
    changes = [c for i in range(2, 5) for c in m.offer(state, sample(i, cpu=10)).changes]
    assert changes == [] and health(state) == Health.PROBLEM  # clear for 20 s
    back = m.offer(state, sample(5, cpu=10)).changes  # clear for 30 s
    assert [(c.before, c.after, c.at) for c in back] == [(Health.PROBLEM, Health.OK, T0 + 40)]


def test_a_silence_in_the_data_records_critical_then_recovery() -> None:
    m = model(heartbeat_tolerance_s=90)
    state = m.new_state(sample(1))
    m.offer(state, sample(1, T0))
    assert m.offer(state, sample(2, T0 + 90)).changes == []  # exactly the tolerance: fine
    result = m.offer(state, sample(3, T0 + 290))  # 200 s gap > 90 s
    assert [(c.after, c.at) for c in result.changes] == [(Health.CRITICAL, T0 + 180),
                                                         (Health.OK, T0 + 290)]
    assert health(state) == Health.OK
    # Down from T0+180 to T0+290 out of 290 s observed.
    assert abs(state.availability.ratio(T0 + 290, 3600) - (1 - 110 / 290)) < 1e-9


def test_live_silence_shows_critical_only_past_the_tolerance() -> None:
    m = model(heartbeat_tolerance_s=90)
    state, _ = run(m, [sample(1, T0, clients=12)])
    quiet = ap_view(m, state, now=T0 + 90)
    assert (quiet.health, quiet.silent, quiet.clients) == (Health.OK, False, 12)
    gone = ap_view(m, state, now=T0 + 91)
    assert (gone.health, gone.silent, gone.clients, gone.rx_bps) == (Health.CRITICAL, True, 0, 0.0)
    assert gone.health_since == T0 + 90
    assert [r.check for r in gone.reasons] == ["heartbeat"]
    assert health(state) == Health.OK  # the view does not touch the stored state
    assert ap_view(m, state, now=None).health == Health.OK  # not caught up: no live verdict


# -- traffic ---------------------------------------------------------------------------------------

def test_traffic_from_counter_differences_and_the_first_sample_is_a_baseline() -> None:
    m = model()
    state, _ = run(m, [sample(1, rx=1000, tx=5000), sample(2, rx=3000, tx=9000)])
    assert state.buckets[f"minute:{int(T0)}"][:2] == [2000, 4000]
    assert state.rx_bps == 2000 * 8 / 10 and state.tx_bps == 4000 * 8 / 10


def test_counter_reset_after_a_reboot_counts_the_bytes_since_boot() -> None:
    m = model()
    samples = [sample(1, rx=10_000, tx=50_000, uptime=5000),
               sample(2, rx=12_000, tx=60_000, uptime=5010),
               sample(3, rx=700, tx=900, uptime=4)]  # rebooted 4 s ago
    state, _ = run(m, samples)
    assert state.reboots == 1
    assert state.buckets[f"minute:{int(T0)}"][:2] == [2000 + 700, 10_000 + 900]
    assert state.rx_bps == 700 * 8 / 4  # over the uptime, not the whole interval


def test_counters_going_down_without_a_placeable_reboot_only_set_a_baseline() -> None:
    m = model()
    samples = [sample(1, rx=10_000, tx=50_000, uptime=5000),
               sample(2, rx=300, tx=400, uptime=5010),           # counters replaced, uptime goes on
               sample(3, rx=1300, tx=1400, uptime=5020)]
    state, _ = run(m, samples)
    assert state.reboots == 0
    assert state.buckets[f"minute:{int(T0)}"][:2] == [1000, 1000]


# -- duplicates and ordering -----------------------------------------------------------------------

def test_duplicates_change_nothing() -> None:
    m = model()
    state, _ = run(m, [sample(i) for i in range(1, 6)])
    before = comparable(state)
    outcomes = [m.offer(state, sample(seq)).outcome for seq in (3, 5, 1)]
    assert outcomes == [Arrival.DUPLICATE] * 3
    assert comparable(state) == before


def test_a_sample_ahead_of_a_gap_waits_for_it() -> None:
    m = model()
    state, outcomes = run(m, [sample(1), sample(3), sample(4)])
    assert outcomes == [Arrival.APPLIED, Arrival.BUFFERED, Arrival.BUFFERED]
    assert state.last_seq == 1 and sorted(state.pending) == [3, 4]
    assert m.offer(state, sample(3)).outcome == Arrival.DUPLICATE  # already waiting
    result = m.offer(state, sample(2))
    assert [s.seq for s in result.applied] == [2, 3, 4] and state.last_seq == 4 and not state.pending


def test_a_gap_is_given_up_after_the_reorder_window_and_its_straggler_dropped() -> None:
    m = AccessPointModel(WifiConfig(reorder_window_s=30))
    state, outcomes = run(m, [sample(1), sample(3), sample(4), sample(5)])
    assert outcomes[-1] == Arrival.BUFFERED  # 20 s of waiting
    result = m.offer(state, sample(6))  # 30 s past the first waiting sample
    assert [s.seq for s in result.applied] == [3, 4, 5, 6] and result.skipped_gaps == 1
    assert m.offer(state, sample(2)).outcome == Arrival.DUPLICATE


def test_an_arrival_that_releases_older_samples_but_still_waits_counts_as_applied() -> None:
    # The site is updated for APPLIED only: releasing older samples moved the AP's state.
    m = AccessPointModel(WifiConfig(reorder_window_s=30))
    state, _ = run(m, [sample(1), sample(3)])  # 3 waits for 2
    result = m.offer(state, sample(8, t=T0 + 10 * (3 - 1) + 30))  # 30 s after 3: gap 2 given up
    assert result.outcome == Arrival.APPLIED and [s.seq for s in result.applied] == [3]
    assert sorted(state.pending) == [8] and result.skipped_gaps == 1


def test_the_reorder_buffer_is_bounded() -> None:
    m = AccessPointModel(WifiConfig(reorder_window_s=10_000, reorder_max_pending=3))
    state, outcomes = run(m, [sample(1), sample(3), sample(4), sample(5), sample(6)])
    assert outcomes[-1] == Arrival.APPLIED and state.last_seq == 6


def _displaced(order: list[int], seed: int, reach: int) -> list[int]:
    """Moves items later by at most `reach` places (a network reordering), seq 1 stays first."""
    rng = random.Random(seed)
    keys = {seq: i + rng.uniform(0, reach) for i, seq in enumerate(order)}
    keys[order[0]] = -1
    return sorted(order, key=keys.__getitem__)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), duplicates=st.lists(st.integers(1, 40), max_size=10),
       cpu_spike=st.integers(5, 30))
def test_any_disorder_inside_the_window_gives_the_in_order_result(seed: int, duplicates: list[int],
                                                                  cpu_spike: int) -> None:
    m = AccessPointModel(WifiConfig(health=HealthConfig(cpu_tolerance_s=40), reorder_window_s=30))
    samples = {i: sample(i, cpu=97 if cpu_spike <= i < cpu_spike + 8 else 30, clients=i % 7,
                         uptime=None if i < 20 else 10 * (i - 20) + 1,
                         rx=None if i < 20 else 100 * i, tx=None if i < 20 else 300 * i)
               for i in range(1, 41)}
    in_order, _ = run(m, list(samples.values()))
    arrival = _displaced(list(samples), seed, reach=2) + duplicates  # at most 20 s out of order
    shuffled, _ = run(m, [samples[seq] for seq in arrival])
    assert comparable(shuffled) == comparable(in_order)


def test_state_survives_a_json_round_trip_and_carries_on_identically() -> None:
    m = model(cpu_tolerance_s=20)
    samples = [sample(i, cpu=95 if i > 3 else 10) for i in range(1, 12)]
    straight, _ = run(m, samples)
    half, _ = run(m, [*samples[:5], samples[7]])  # one waiting in the buffer
    restored = m.load(json.loads(json.dumps(half.to_dict())))
    for s in samples[5:]:
        m.offer(restored, s)
    assert comparable(restored) == comparable(straight)


def test_identity_fields_follow_the_latest_sample() -> None:
    m = model()
    first = sample(1)._replace(name="Old", lat=-7.1, lon=109.1, firmware="1.0")
    state, _ = run(m, [first, sample(2)._replace(name="New", firmware="2.0")])
    assert (state.name, state.lat, state.firmware) == ("New", -7.1, "2.0")


# -- the common-case shortcut equals the general path --------------------------------------------


def _offer_result(result: object) -> dict[str, object]:
    return json.loads(json.dumps(dataclasses.asdict(result), default=sorted))  # type: ignore[call-overload,no-any-return]


_STEPS = st.tuples(st.sampled_from([-1, 0, 1, 1, 1, 2]), st.sampled_from([-5.0, 0.0, 10.0, 10.0, 60.5, 95.0]),
                   st.sampled_from([20.0, 93.0, 97.0]), st.sampled_from([50.0, 96.0]), st.integers(0, 40),
                   st.sampled_from([-2, 0, 7, 3000]), st.sampled_from([-2, 0, 7, 3000]), st.booleans())


@settings(max_examples=80, deadline=None)
@given(st.lists(_STEPS, min_size=1, max_size=60))
def test_the_common_case_shortcut_gives_what_the_general_path_gives(
        steps: list[tuple[int, float, float, float, int, int, int, bool]]) -> None:
    """Seq steps (repeats, gaps, out of order), time steps (backwards, past the heartbeat
    tolerance), failing checks, counters going down, reboots: state and result after every
    sample equal with and without `_offer_next`."""
    config = WifiConfig(health=HealthConfig(cpu_tolerance_s=30, memory_tolerance_s=20, memory_recovery_s=15),
                        reorder_window_s=25, reorder_max_pending=4)
    fast, general = AccessPointModel(config), AccessPointModel(config, shortcut=False)
    seq, t, uptime, rx, tx = 1, T0, 100_000, 1_000_000, 3_000_000
    samples = []
    for seq_step, t_step, cpu, mem, clients, rx_step, tx_step, reboot in steps:
        seq, t = seq + seq_step, t + t_step
        uptime = 5 if reboot else uptime + max(int(t_step), 0)
        rx, tx = max(rx + rx_step, 0), max(tx + tx_step, 0)
        samples.append(sample(max(seq, 1), t, cpu=cpu, mem=mem, clients=clients, rx=rx, tx=tx, uptime=uptime))
    fast_state, general_state = fast.new_state(samples[0]), general.new_state(samples[0])
    for item in samples:
        fast_result, general_result = fast.offer(fast_state, item), general.offer(general_state, item)
        assert _offer_result(fast_result) == _offer_result(general_result)
        assert comparable(fast_state) == comparable(general_state)
        assert fast_state.open_until == general_state.open_until


@settings(max_examples=80, deadline=None)
@given(st.lists(_STEPS, min_size=1, max_size=60))
def test_the_checks_encoded_with_the_quiet_shortcut_are_those_made_one_by_one(
        steps: list[tuple[int, float, float, float, int, int, int, bool]]) -> None:
    """After every sample of a random run (checks failing, firing, recovering, silences), the
    encoded checks equal the lists made one by one, and the state reads back from them."""
    config = WifiConfig(health=HealthConfig(cpu_tolerance_s=30, memory_tolerance_s=20, memory_recovery_s=15))
    m = AccessPointModel(config)
    seq, t = 1, T0
    state = None
    for seq_step, t_step, cpu, mem, clients, _, _, _ in steps:
        seq, t = max(seq + seq_step, 1), t + t_step
        item = sample(seq, t, cpu=cpu, mem=mem, clients=clients)
        state = state or m.new_state(item)
        m.offer(state, item)
        if t_step > 60:
            state.health.check_silence(t + 3600)
        one_by_one = {name: [c.failing_since, c.clear_since, c.firing, c.detail]
                      for name, c in state.health.checks.items()}
        assert encoded_checks(state.health) == one_by_one
        read_back = AccessPointState.from_list(json.loads(json.dumps(state.to_list())), m)
        assert comparable(read_back) == comparable(state)
