"""POST /requests: the form a citizen's app sends, checked and turned into a new request.

GeoReport v2 posts `application/x-www-form-urlencoded` fields: api_key, service_code, a
location (lat and long, or address_string, or address_id), attribute[CODE] (attribute[CODE][]
for a multivaluelist), the reporter (email, first_name, last_name, phone), device_id,
account_id, description, media_url. What the facade checks itself is GeoReport's part (the
service exists, a location is given, the attributes fit the service definition); the field
limits (lengths, phone and e-mail shapes, URLs) are the gateway's, whose message the caller gets.

The platform's request has no attribute field: answers to the definition's questions are
appended to the description, in the definition's words, so the OPD reads them where it reads
the report. device_id and account_id identify a person's device or account: the platform
needs neither, so they are checked for size and not stored (data minimisation, UU PDP).

Idempotency: a retried POST must not make a second request. The key sent to the gateway is
derived from the api_key and either the client's Idempotency-Key header or, without one, the
form itself, so a resent identical form is the same request. The key is also the `token` the
facade answers when the request's id is not known in time (GET /tokens/{token}).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from open311.core.catalogue import Attribute, Catalogue, Service
from open311.core.errors import bad_request, forbidden

Pairs = Sequence[tuple[str, str]]

TOKEN_PREFIX = "o311-"
_TOKEN = re.compile(r"^o311-[0-9a-f]{40}$")
_ATTRIBUTE = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")
# What a bearer token can be (RFC 6750 b64token, generously): never sent on when it is not.
_API_KEY = re.compile(r"^[\x21-\x7e]{1,512}$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
SCALAR_FIELDS = (
    "api_key",
    "jurisdiction_id",
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "email",
    "device_id",
    "account_id",
    "first_name",
    "last_name",
    "phone",
    "description",
    "media_url",
)
MAX_IDENTIFIER = 128
MAX_ATTRIBUTE_VALUE = 500
MAX_TITLE = 120
MAX_CLIENT_KEY = 128


@dataclass(frozen=True)
class Reporter:
    name: str = ""
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class NewRequest:
    """What the gateway's SubmitRequest gets (the api_key is the caller's bearer token)."""

    api_key: str
    idempotency_key: str
    service_code: str
    title: str
    description: str
    address: str
    lat: float | None
    long: float | None
    media_url: str
    reporter: Reporter


def parse_submission(pairs: Pairs, catalogue: Catalogue, client_key: str = "") -> NewRequest:
    """The new request of a POSTed form, or the 400/403 Open311Error that says what is wrong."""
    fields = _scalars(pairs)
    api_key = fields.get("api_key", "")
    if not api_key:
        raise forbidden("api_key is required to create a service request")
    if not _API_KEY.match(api_key):
        raise forbidden("invalid api_key: it is printable ASCII without spaces, at most 512 characters")
    check_jurisdiction(fields.get("jurisdiction_id", ""), catalogue)
    service = _service(fields.get("service_code", ""), catalogue)
    lat, long = _location(fields)
    address = fields.get("address_string", "").strip()
    address_id = fields.get("address_id", "").strip()
    if lat is None and not address and not address_id:
        raise bad_request("a location is required: lat and long, or address_string, or address_id")
    for name in ("device_id", "account_id", "address_id"):
        if len(fields.get(name, "")) > MAX_IDENTIFIER:
            raise bad_request(f"{name} is longer than {MAX_IDENTIFIER} characters")
    answers = _attribute_answers(pairs, service)
    text = fields.get("description", "").strip()
    first, last = fields.get("first_name", "").strip(), fields.get("last_name", "").strip()
    return NewRequest(
        api_key=api_key,
        idempotency_key=idempotency_key(api_key, pairs, client_key),
        service_code=service.code,
        title=_title(text, service),
        description=_description(text, service, answers),
        address=address or (f"address_id {address_id}" if address_id else ""),
        lat=lat,
        long=long,
        media_url=fields.get("media_url", "").strip(),
        reporter=Reporter(
            name=" ".join(p for p in (first, last) if p),
            phone=fields.get("phone", "").strip(),
            email=fields.get("email", "").strip(),
        ),
    )


def check_jurisdiction(jurisdiction_id: str, catalogue: Catalogue) -> None:
    """jurisdiction_id is optional (one jurisdiction is served); another one is a 400."""
    if jurisdiction_id and jurisdiction_id != catalogue.jurisdiction_id:
        raise bad_request(
            f"jurisdiction_id {jurisdiction_id!r} is not served here; this endpoint serves "
            f"{catalogue.jurisdiction_id!r}"
        )


def idempotency_key(api_key: str, pairs: Pairs, client_key: str = "") -> str:
    """The gateway's idempotency key (and the GeoReport token) of a POST.

    Tied to the api_key, so two apps can never share one; the client's own key when it sends
    one, else the form's fields in a canonical order, minus the api_key."""
    if client_key and (len(client_key) > MAX_CLIENT_KEY or any(c.isspace() for c in client_key)):
        raise bad_request(f"the Idempotency-Key header is at most {MAX_CLIENT_KEY} characters, no spaces")
    digest = hashlib.sha256(hashlib.sha256(api_key.encode()).digest())
    if client_key:
        digest.update(b"key\x1e" + client_key.encode())
    else:
        for name, value in sorted((n, v) for n, v in pairs if n != "api_key"):
            digest.update(f"{name}\x1f{value}\x1e".encode())
    return TOKEN_PREFIX + digest.hexdigest()[:40]


def is_token(text: str) -> bool:
    return bool(_TOKEN.match(text))


def _scalars(pairs: Pairs) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name not in SCALAR_FIELDS:
            continue  # attribute[...] and fields GeoReport does not define
        if name in fields:
            raise bad_request(f"{name} is given more than once")
        fields[name] = value
    return fields


def _service(code: str, catalogue: Catalogue) -> Service:
    if not code:
        raise bad_request("service_code is required (GET /services lists them)")
    service = catalogue.service(code)
    if service is None:
        raise bad_request(f"service_code {code!r} is not a service here (GET /services lists them)")
    return service


def parse_number(name: str, raw: str) -> float:
    value = float(raw) if _NUMBER.match(raw.strip()) else math.nan
    if not math.isfinite(value):
        raise bad_request(f"{name} must be a number, got {raw!r}")
    return value


def _location(fields: dict[str, str]) -> tuple[float | None, float | None]:
    raw_lat, raw_long = fields.get("lat", "").strip(), fields.get("long", "").strip()
    if not raw_lat and not raw_long:
        return None, None
    if not raw_lat or not raw_long:
        raise bad_request("lat and long go together: give both, or neither")
    lat, long = parse_number("lat", raw_lat), parse_number("long", raw_long)
    if not -90 <= lat <= 90 or not -180 <= long <= 180:
        raise bad_request(f"lat/long ({lat}, {long}) is not a WGS84 position")
    return lat, long


def _attribute_answers(pairs: Pairs, service: Service) -> list[tuple[Attribute, list[str]]]:
    """(attribute, values) for each answered attribute, in the definition's order."""
    given: dict[str, list[str]] = {}
    for name, value in pairs:
        match = _ATTRIBUTE.match(name)
        if match is None:
            continue
        code, many = match.group(1), bool(match.group(2))
        attribute = service.attribute(code)
        if attribute is None:
            raise bad_request(f"attribute[{code}] is not an attribute of service {service.code}")
        if many != (attribute.datatype == "multivaluelist"):
            form = f"attribute[{code}][]" if attribute.datatype == "multivaluelist" else f"attribute[{code}]"
            raise bad_request(f"attribute {code} ({attribute.datatype}) is sent as {form}")
        if not many and code in given:
            raise bad_request(f"attribute[{code}] is given more than once")
        if value.strip():
            given.setdefault(code, []).append(value.strip())
    answers = []
    for attribute in service.attributes:
        values = given.get(attribute.code, [])
        if not values:
            if attribute.required:
                raise bad_request(f"attribute[{attribute.code}] is required: {attribute.description}")
            continue
        for value in values:
            _check_value(attribute, value)
        answers.append((attribute, values))
    return answers


def _check_value(attribute: Attribute, value: str) -> None:
    name = f"attribute[{attribute.code}]"
    if len(value) > MAX_ATTRIBUTE_VALUE:
        raise bad_request(f"{name} is longer than {MAX_ATTRIBUTE_VALUE} characters")
    if attribute.datatype == "number":
        parse_number(name, value)
    elif attribute.datatype == "datetime":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise bad_request(f"{name} must be an ISO 8601 date and time, got {value!r}") from None
    elif attribute.datatype in ("singlevaluelist", "multivaluelist") and value not in attribute.value_keys():
        keys = ", ".join(sorted(attribute.value_keys()))
        raise bad_request(f"{name}: {value!r} is not one of its values ({keys})")


def _title(text: str, service: Service) -> str:
    first_line = text.splitlines()[0].strip() if text else ""
    if not first_line:
        return service.name
    if len(first_line) <= MAX_TITLE:
        return first_line
    return first_line[: MAX_TITLE - 1].rsplit(" ", 1)[0] + "…"


def _description(text: str, service: Service, answers: list[tuple[Attribute, list[str]]]) -> str:
    lines = [text or f"Laporan {service.name}"]
    if answers:
        lines.append("")
        for attribute, values in answers:
            shown = ", ".join(attribute.value_name(v) for v in values)
            lines.append(f"{attribute.description}: {shown}")
    return "\n".join(lines)
