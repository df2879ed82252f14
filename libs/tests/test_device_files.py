"""smartcity.device_files: the edge collectors' device lists, their defaults and secret files."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcity.device_files import DeviceFile
from smartcity.settings import SettingsError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "devices.yaml"
    path.write_text(text)
    return path


def test_entries_start_from_the_defaults_and_read_secrets_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "community").write_text("s3cret\n")
    path = write(tmp_path, "defaults: {port: 161, community_file: community}\n"
                           "aps:\n  - {ap_id: a}\n  - {ap_id: b, port: 1161, community: inline}\n")
    devices = DeviceFile.load("X_FILE", path)
    first, second = devices.entries("aps")
    assert (first.fields["port"], devices.secret(first, "community")) == (161, "s3cret")
    assert second.fields["port"] == 1161 and second.where == "X_FILE: aps[1]"
    # A file named for the secret wins over an inline one: the defaults named a file.
    assert devices.secret(second, "community") == "s3cret"


def test_every_error_names_the_variable_and_the_device(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"X_FILE .*missing\.yaml"):
        DeviceFile.load("X_FILE", tmp_path / "missing.yaml")
    with pytest.raises(SettingsError, match=r"X_FILE .*: expected a YAML mapping"):
        DeviceFile.load("X_FILE", write(tmp_path, "- a\n- b\n"))
    devices = DeviceFile.load("X_FILE", write(tmp_path, "aps:\n  - {ap_id: a, secret_file: nope}\n  - {}\n"))
    first, second = devices.entries("aps")
    with pytest.raises(SettingsError, match=r"X_FILE: aps\[0\] secret_file: No such file"):
        devices.secret(first, "secret")
    with pytest.raises(SettingsError, match=r"X_FILE: aps\[1\] lacks ap_id"):
        second.required("ap_id")
    with pytest.raises(SettingsError, match=r"X_FILE: aps\[1\] has no secret"):
        devices.secret(second, "secret")
    assert devices.secret(second, "secret", required=False) == ""
