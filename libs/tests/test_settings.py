"""smartcity.settings: one declarative read of a settings dataclass from the environment."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from smartcity.settings import SettingsError, env_fields


@dataclass(frozen=True)
class Knobs:
    targets_file: str = ""
    interval_s: float = 30.0
    retries: int = 1
    verbose: bool = False
    workers: int = field(default_factory=lambda: 3)
    tags: tuple[str, ...] = ()


def test_each_field_is_read_from_its_prefixed_variable_by_its_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_TARGETS_FILE", "aps.yaml")
    monkeypatch.setenv("EDGE_INTERVAL_S", "2.5")
    monkeypatch.setenv("EDGE_RETRIES", "4")
    monkeypatch.setenv("EDGE_VERBOSE", "yes")
    assert Knobs(**env_fields(Knobs, "EDGE_")) == Knobs("aps.yaml", 2.5, 4, True, 3)


def test_unset_or_empty_variables_keep_the_fields_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_RETRIES", "")
    values = env_fields(Knobs, "EDGE_")
    assert values == {"targets_file": "", "interval_s": 30.0, "retries": 1, "verbose": False, "workers": 3}
    assert "tags" not in values  # not a scalar: the caller's to read


def test_a_bad_value_names_its_variable_and_skipped_fields_are_not_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_RETRIES", "many")
    with pytest.raises(SettingsError, match="EDGE_RETRIES='many' is not an integer"):
        env_fields(Knobs, "EDGE_")
    assert "retries" not in env_fields(Knobs, "EDGE_", skip={"retries"})
