"""GeoReport documents in JSON and XML, and the discovery document.

JSON is the value itself (a list of objects, or an object for a service definition and
discovery). XML wraps it in the spec's root element; a list's items are named after their
list (services/service, service_requests/request, errors/error, attributes/attribute,
values/value, endpoints/endpoint, formats/format). UTF-8 with the XML declaration, as the spec
requires. Built as text: 1,000 requests render in a few milliseconds.
"""

from __future__ import annotations

import json
import re
from typing import Any
from xml.sax.saxutils import escape

from open311.core.catalogue import Catalogue

FORMATS = ("json", "xml")
CONTENT_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}
# Characters XML 1.0 cannot carry at all (the gateway refuses most of them on input already).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def render(document: Any, root: str, fmt: str) -> bytes:
    """The document as the body of a `fmt` answer; `root` names the XML root element."""
    if fmt == "json":
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    parts = ['<?xml version="1.0" encoding="UTF-8"?>']
    _element(root, document, parts)
    return "".join(parts).encode()


def _element(name: str, value: Any, parts: list[str]) -> None:
    if value is None or (isinstance(value, list | dict) and not value):
        parts.append(f"<{name}/>")
    elif isinstance(value, dict):
        parts.append(f"<{name}>")
        for key, item in value.items():
            _element(key, item, parts)
        parts.append(f"</{name}>")
    elif isinstance(value, list):
        item_name = ITEM_NAMES.get(name, "item")
        parts.append(f"<{name}>")
        for item in value:
            _element(item_name, item, parts)
        parts.append(f"</{name}>")
    else:
        parts.append(f"<{name}>{_text(value)}</{name}>")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return escape(_NOT_XML.sub("", str(value)))


def discovery(catalogue: Catalogue, base_url: str, endpoint_type: str = "production") -> dict[str, Any]:
    """GeoReport's service discovery: where the v2 endpoint is and which formats it speaks."""
    return {
        "changeset": catalogue.changeset,
        "contact": catalogue.contact,
        "key_service": catalogue.key_service,
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": base_url.rstrip("/"),
                "changeset": catalogue.changeset,
                "type": endpoint_type,
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
