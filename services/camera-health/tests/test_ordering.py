"""Seq ordering of one source (smartcity.ordering on camera samples): duplicates, reordering
within the window, gaps, restarts."""

from __future__ import annotations

from camera_health.core.model import Sample
from smartcity.ordering import Arrival, SeqCursor


def s(seq: int, at: float | None = None) -> Sample:
    return Sample("cam-1", seq, float(seq * 10 if at is None else at))


def seqs(samples: list[Sample]) -> list[int]:
    return [x.seq for x in samples]


def test_in_order_samples_apply_at_once() -> None:
    cursor = SeqCursor[Sample]()
    assert cursor.accept(s(1), 15, 32) == (Arrival.APPLIED, [s(1)])
    assert cursor.accept(s(2), 15, 32) == (Arrival.APPLIED, [s(2)])


def test_duplicates_are_ignored_whether_applied_or_waiting() -> None:
    cursor = SeqCursor[Sample]()
    cursor.accept(s(1), 15, 32)
    assert cursor.accept(s(1), 15, 32) == (Arrival.DUPLICATE, [])
    assert cursor.accept(s(3), 15, 32)[0] == Arrival.BUFFERED
    assert cursor.accept(s(3), 15, 32) == (Arrival.DUPLICATE, [])


def test_a_swapped_pair_is_applied_in_seq_order() -> None:
    cursor = SeqCursor[Sample]()
    cursor.accept(s(1), 15, 32)
    assert cursor.accept(s(3), 15, 32) == (Arrival.BUFFERED, [])
    verdict, ready = cursor.accept(s(2), 15, 32)
    assert verdict == Arrival.APPLIED
    assert seqs(ready) == [2, 3]


def test_a_gap_is_given_up_once_the_window_has_passed_in_event_time() -> None:
    cursor = SeqCursor[Sample]()
    cursor.accept(s(1), 15, 32)
    assert cursor.accept(s(3, at=30), 15, 32) == (Arrival.BUFFERED, [])
    assert cursor.accept(s(4, at=44.9), 15, 32) == (Arrival.BUFFERED, [])
    verdict, ready = cursor.accept(s(5, at=45), 15, 32)  # 45 - 30 == window: give up seq 2
    assert verdict == Arrival.APPLIED
    assert seqs(ready) == [3, 4, 5]
    assert cursor.accept(s(2), 15, 32) == (Arrival.DUPLICATE, [])  # late: never applied out of order


def test_too_many_waiting_gives_up_the_gap() -> None:
    cursor = SeqCursor[Sample]()
    cursor.accept(s(1), 1000, 2)
    cursor.accept(s(3), 1000, 2)
    cursor.accept(s(4), 1000, 2)
    assert seqs(cursor.accept(s(5), 1000, 2)[1]) == [3, 4, 5]


def test_the_timer_releases_waiting_samples_older_than_the_window() -> None:
    cursor = SeqCursor[Sample]()
    cursor.accept(s(1), 15, 32)
    cursor.accept(s(3, at=30), 15, 32)
    assert cursor.release_until(44.9, 15) == []
    assert seqs(cursor.release_until(45, 15)) == [3]
    assert cursor.pending == {}


def test_window_zero_never_waits() -> None:
    cursor = SeqCursor[Sample]()
    cursor.accept(s(1), 0, 32)
    assert seqs(cursor.accept(s(5), 0, 32)[1]) == [5]


def test_a_counter_restart_with_newer_event_time_restarts_the_cursor() -> None:
    cursor = SeqCursor[Sample]()
    cursor.accept(s(1, at=10), 15, 32)
    cursor.accept(s(2, at=20), 15, 32)
    verdict, ready = cursor.accept(s(1, at=100), 15, 32)
    assert verdict == Arrival.RESTARTED
    assert seqs(ready) == [1]
    assert cursor.accept(s(2, at=110), 15, 32) == (Arrival.APPLIED, [s(2, at=110)])


def test_round_trip_keeps_waiting_samples() -> None:
    cursor = SeqCursor[Sample]()
    cursor.accept(s(1), 15, 32)
    cursor.accept(s(3), 15, 32)
    again = SeqCursor.from_dict(cursor.to_dict(Sample.to_dict), Sample.from_dict)
    assert again == cursor
    assert seqs(again.accept(s(2), 15, 32)[1]) == [2, 3]
