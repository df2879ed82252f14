"""The deadline heap behind the services' timers."""

from __future__ import annotations

from smartcity.deadlines import Deadlines


def test_only_what_is_due_comes_out_soonest_first_and_once() -> None:
    deadlines = Deadlines()
    deadlines.set("b", 20.0)
    deadlines.set("a", 10.0)
    deadlines.set("c", 30.0)
    assert deadlines.pop_due(10.0) == []  # due means before now
    assert deadlines.pop_due(25.0) == ["a", "b"]
    assert deadlines.pop_due(25.0) == []
    assert len(deadlines) == 1


def test_setting_again_replaces_and_discard_removes() -> None:
    deadlines = Deadlines()
    deadlines.set("a", 10.0)
    deadlines.set("a", 50.0)  # heard again: due later
    deadlines.set("b", 10.0)
    deadlines.discard("b")
    assert deadlines.pop_due(40.0) == []
    assert deadlines.pop_due(60.0) == ["a"]


def test_many_replaced_entries_do_not_pile_up() -> None:
    deadlines = Deadlines()
    for t in range(10_000):
        deadlines.set("a", float(t))
        deadlines.pop_due(-1.0)
    assert len(deadlines._heap) < 200
    assert deadlines.pop_due(1e9) == ["a"]
