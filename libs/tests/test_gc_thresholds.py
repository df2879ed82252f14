"""The collector's thresholds a service process runs with: from GC_THRESHOLDS, a clear error
for anything else, and set in the interpreter."""

from __future__ import annotations

import gc

import pytest

from smartcity.gc_thresholds import (
    DEFAULT_GC_THRESHOLDS,
    PYTHON_GC_THRESHOLDS,
    gc_thresholds_from_env,
    use_gc_thresholds,
)
from smartcity.settings import SettingsError


@pytest.mark.parametrize(("raw", "expected"), [
    (None, DEFAULT_GC_THRESHOLDS), ("", DEFAULT_GC_THRESHOLDS), ("python", PYTHON_GC_THRESHOLDS),
    (" Python ", PYTHON_GC_THRESHOLDS), ("1000,5,2", (1000, 5, 2)), ("0, 10, 10", (0, 10, 10)),
])
def test_thresholds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str | None,
                                              expected: tuple[int, int, int]) -> None:
    if raw is None:
        monkeypatch.delenv("GC_THRESHOLDS", raising=False)
    else:
        monkeypatch.setenv("GC_THRESHOLDS", raw)
    assert gc_thresholds_from_env() == expected


@pytest.mark.parametrize("raw", ["50000", "1,2,3,4", "a,b,c", "-1,10,10", "1.5,10,10", "off"])
def test_anything_else_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("GC_THRESHOLDS", raw)
    with pytest.raises(SettingsError, match="GC_THRESHOLDS"):
        gc_thresholds_from_env()


def test_the_thresholds_are_the_interpreters_from_then_on() -> None:
    before = gc.get_threshold()
    try:
        use_gc_thresholds((12_345, 6, 7))
        assert gc.get_threshold() == (12_345, 6, 7)
        assert DEFAULT_GC_THRESHOLDS[0] > PYTHON_GC_THRESHOLDS[0]  # the point of the module
    finally:
        gc.set_threshold(*before)
