"""The service catalogue: what GET /services and GET /services/{code} answer, and the agencies.

Loaded from `services.yaml` (or OPEN311_SERVICES_FILE). A service is a citizen-request category
(service_code = category); its attributes are GeoReport's service definition, which a POST is
checked against. Agencies map an OPD code to the name `agency_responsible` shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SERVICES_FILE = Path(__file__).resolve().parents[1] / "services.yaml"
DATATYPES = frozenset({"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"})
LIST_DATATYPES = frozenset({"singlevaluelist", "multivaluelist"})
# GeoReport service types; every service here answers its id at once.
SERVICE_TYPE = "realtime"
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")


class CatalogueError(ValueError):
    """The services file cannot be used (the facade refuses to start with it)."""


@dataclass(frozen=True)
class AttributeValue:
    key: str
    name: str


@dataclass(frozen=True)
class Attribute:
    """One question of a service definition (GeoReport `attribute`)."""

    code: str
    description: str
    datatype: str
    required: bool = False
    order: int = 1
    datatype_description: str = ""
    values: tuple[AttributeValue, ...] = ()

    def value_keys(self) -> frozenset[str]:
        return frozenset(v.key for v in self.values)

    def value_name(self, key: str) -> str:
        return next((v.name for v in self.values if v.key == key), key)

    def document(self) -> dict[str, Any]:
        return {
            "variable": True,
            "code": self.code,
            "datatype": self.datatype,
            "required": self.required,
            "datatype_description": self.datatype_description or None,
            "order": self.order,
            "description": self.description,
            "values": [{"key": v.key, "name": v.name} for v in self.values],
        }


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    description: str
    group: str = ""
    keywords: tuple[str, ...] = ()
    attributes: tuple[Attribute, ...] = ()

    def attribute(self, code: str) -> Attribute | None:
        return next((a for a in self.attributes if a.code == code), None)

    def document(self) -> dict[str, Any]:
        """The service as GET /services lists it."""
        return {
            "service_code": self.code,
            "service_name": self.name,
            "description": self.description,
            "metadata": bool(self.attributes),
            "type": SERVICE_TYPE,
            "keywords": ", ".join(self.keywords),
            "group": self.group,
        }

    def definition(self) -> dict[str, Any]:
        """GET /services/{code}: the service definition (empty attributes when it asks nothing)."""
        return {"service_code": self.code, "attributes": [a.document() for a in self.attributes]}


@dataclass(frozen=True)
class Catalogue:
    jurisdiction_id: str
    services: Mapping[str, Service]
    agencies: Mapping[str, str] = field(default_factory=dict)
    changeset: str = ""
    contact: str = ""
    key_service: str = ""

    def service(self, code: str) -> Service | None:
        return self.services.get(code)

    def agency_name(self, opd_code: str) -> str:
        return self.agencies.get(opd_code, opd_code)

    def service_list(self) -> list[dict[str, Any]]:
        return [s.document() for s in self.services.values()]

    @classmethod
    def load(cls, path: Path = DEFAULT_SERVICES_FILE) -> Catalogue:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise CatalogueError(f"cannot read services file {path}: {exc}") from exc
        return cls.from_mapping(data, str(path))

    @classmethod
    def from_mapping(cls, data: Any, source: str = "services file") -> Catalogue:
        if not isinstance(data, dict) or not isinstance(data.get("services"), dict) or not data["services"]:
            raise CatalogueError(f"{source}: expected a mapping with a non-empty 'services' mapping")
        if not data.get("jurisdiction_id"):
            raise CatalogueError(f"{source}: jurisdiction_id is required")
        services = {str(code): _service(str(code), entry, source) for code, entry in data["services"].items()}
        agencies = data.get("agencies") or {}
        if not isinstance(agencies, dict):
            raise CatalogueError(f"{source}: agencies must map OPD codes to names")
        return cls(
            jurisdiction_id=str(data["jurisdiction_id"]),
            services=services,
            agencies={str(k): str(v) for k, v in agencies.items()},
            changeset=str(data.get("changeset") or ""),
            contact=str(data.get("contact") or ""),
            key_service=str(data.get("key_service") or ""),
        )


def _service(code: str, entry: Any, source: str) -> Service:
    where = f"{source}: service {code}"
    if not _CODE.match(code):
        raise CatalogueError(f"{where}: a service_code is letters, digits, _ and -")
    if not isinstance(entry, dict) or not entry.get("name") or not entry.get("description"):
        raise CatalogueError(f"{where}: needs a name and a description")
    raw_attributes = entry.get("attributes") or []
    if not isinstance(raw_attributes, list):
        raise CatalogueError(f"{where}: attributes must be a list")
    attributes = tuple(_attribute(a, order, where) for order, a in enumerate(raw_attributes, start=1))
    codes = [a.code for a in attributes]
    if len(codes) != len(set(codes)):
        raise CatalogueError(f"{where}: attribute codes must be unique")
    return Service(
        code=code,
        name=str(entry["name"]),
        description=str(entry["description"]),
        group=str(entry.get("group") or ""),
        keywords=tuple(str(k) for k in entry.get("keywords") or []),
        attributes=attributes,
    )


def _attribute(entry: Any, order: int, where: str) -> Attribute:
    if not isinstance(entry, dict) or not entry.get("code") or not entry.get("description"):
        raise CatalogueError(f"{where}: every attribute needs a code and a description")
    code, datatype = str(entry["code"]), str(entry.get("datatype") or "string")
    if not _CODE.match(code):
        raise CatalogueError(f"{where}: attribute code {code!r} is letters, digits, _ and -")
    if datatype not in DATATYPES:
        raise CatalogueError(f"{where}: attribute {code}: datatype must be one of {sorted(DATATYPES)}")
    values = tuple(
        AttributeValue(str(v["key"]), str(v.get("name") or v["key"]))
        for v in entry.get("values") or []
        if isinstance(v, dict) and "key" in v
    )
    if (datatype in LIST_DATATYPES) != bool(values):
        raise CatalogueError(f"{where}: attribute {code}: values go with the list datatypes, and only them")
    return Attribute(
        code=code,
        description=str(entry["description"]),
        datatype=datatype,
        required=bool(entry.get("required", False)),
        order=order,
        datatype_description=str(entry.get("datatype_description") or ""),
        values=values,
    )
