"""The shared seq reorder buffer on a bare event type, and headers as (str, bytes) pairs."""

from __future__ import annotations

from dataclasses import dataclass

from smartcity.headers import header_value, headers_of
from smartcity.ordering import Arrival, SeqCursor, gaps_skipped


@dataclass(frozen=True)
class Event:
    seq: int
    event_time: float


def test_without_restarts_an_older_seq_with_a_newer_time_is_a_duplicate() -> None:
    cursor: SeqCursor[Event] = SeqCursor()
    assert cursor.accept(Event(5, 50), 15, 32) == (Arrival.APPLIED, [Event(5, 50)])
    assert cursor.accept(Event(1, 500), 15, 32, restarts=False) == (Arrival.DUPLICATE, [])
    arrival, ready = cursor.accept(Event(1, 500), 15, 32)
    assert arrival is Arrival.RESTARTED and ready == [Event(1, 500)] and cursor.last_seq == 1


def test_a_given_up_gap_is_counted_once_per_jump() -> None:
    cursor: SeqCursor[Event] = SeqCursor()
    cursor.accept(Event(1, 10), 15, 32)
    assert cursor.accept(Event(3, 30), 15, 32) == (Arrival.BUFFERED, [])
    arrival, ready = cursor.accept(Event(6, 45), 15, 32)  # 45 - 30 >= 15: the gap at 2 is given up
    assert arrival is Arrival.BUFFERED and [e.seq for e in ready] == [3]
    assert gaps_skipped(1, ready) == 1
    assert gaps_skipped(3, cursor.release_until(100, 15)) == 1  # 4 and 5 never came
    assert gaps_skipped(None, [Event(7, 1), Event(8, 2)]) == 0


def test_the_cursor_round_trips_through_its_dict() -> None:
    cursor: SeqCursor[Event] = SeqCursor()
    cursor.accept(Event(1, 10), 15, 32)
    cursor.accept(Event(4, 12), 15, 32)
    data = cursor.to_dict(lambda e: [e.seq, e.event_time])
    assert data == {"seq": 1, "at": 10, "pend": [[4, 12]]}
    assert SeqCursor.from_dict(data, lambda d: Event(int(d[0]), float(d[1]))) == cursor


@dataclass
class Record:
    headers: object


def test_headers_of_takes_mappings_pairs_and_none() -> None:
    assert headers_of(Record({"a": b"1", "b": None})) == [("a", b"1"), ("b", b"")]
    assert headers_of(Record([("a", b"1"), ("a", b"2")])) == [("a", b"1"), ("a", b"2")]
    assert headers_of(Record(None)) == []
    assert header_value([("a", b"1"), ("a", b"2")], "a") == b"2"
    assert header_value([], "a") is None
