"""The device files of the edge collectors (SNMP targets, RADIUS NASes, cameras).

Each is a YAML document named by an environment variable: a list of devices under one key,
optional `defaults` every device starts from, and secrets (SNMP communities, RADIUS shared
secrets, camera credentials) either inline or, better, in a file of their own beside the
inventory (`<name>_file`, relative to the inventory's folder) so the inventory itself can be
reviewed and versioned. Every error names the variable, the device's place in the list and
what is wrong with it; a secret never appears in one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from smartcity.settings import SettingsError


@dataclass(frozen=True)
class DeviceEntry:
    """One device of an inventory: its fields over the defaults, and where it stands."""

    fields: Mapping[str, Any]
    where: str  # e.g. "WIFI_SNMP_TARGETS_FILE: access_points[3]"

    def required(self, name: str) -> str:
        value = self.fields.get(name)
        if value is None or value == "":
            raise SettingsError(f"{self.where} lacks {name}")
        return str(value)


@dataclass(frozen=True)
class DeviceFile:
    variable: str
    path: Path
    document: Mapping[str, Any]

    @classmethod
    def load(cls, variable: str, path: str | Path) -> DeviceFile:
        """The YAML document of the file `path`, named by the environment variable `variable`."""
        try:
            document = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"{variable} {path}: {exc}") from exc
        if not isinstance(document, Mapping):
            raise SettingsError(f"{variable} {path}: expected a YAML mapping at the top")
        return cls(variable, Path(path), document)

    def entries(self, key: str) -> Iterator[DeviceEntry]:
        """The devices listed under `key`, each over the document's `defaults`."""
        defaults = self.document.get("defaults") or {}
        for index, entry in enumerate(self.document.get(key) or []):
            if not isinstance(entry, Mapping):
                raise SettingsError(f"{self.variable}: {key}[{index}] is not a mapping")
            yield DeviceEntry({**defaults, **entry}, f"{self.variable}: {key}[{index}]")

    def secret(self, entry: DeviceEntry, name: str, *, required: bool = True) -> str:
        """The secret `name` of a device: the content of the file `<name>_file` (relative to
        the inventory's folder), else the inline `name`. "" when absent and not required."""
        file = entry.fields.get(f"{name}_file")
        if file:
            try:
                secret = (self.path.parent / str(file)).read_text().strip()
            except OSError as exc:
                raise SettingsError(f"{entry.where} {name}_file: {exc.strerror}") from exc
            if not secret:
                raise SettingsError(f"{entry.where} {name}_file is empty")
            return secret
        secret = str(entry.fields.get(name) or "")
        if required and not secret:
            raise SettingsError(f"{entry.where} has no {name} ({name}_file or {name})")
        return secret
