"""Bearer tokens, scopes, who may see which request, and per-client rate limits. Pure Python.

Tokens are never stored in clear: the token file maps the SHA-256 (hex) of each token to the
client it belongs to. Format (YAML, or the same structure in JSON):

    tokens:
      <sha256 hex of the token>:
        client_id: dpmptsp-app
        opd_code: DPMPTSP            # OPD whose requests this client handles ("" = none)
        scopes: [devices:read, requests:read, requests:write]
        actor_kind: opd_staff        # optional: citizen | opd_staff | command_center | system
        rate_limit_rps: 50           # optional per-client override of the rate limit
        rate_limit_burst: 100

`smartcity token-hash <token>` prints the hash of a new token.

The `authorization` metadata must be exactly `Bearer <token>` (RFC 6750 section 2.1): the scheme
in any case (RFC 7235 makes auth schemes case-insensitive), one space, and a b64token; no
leading or trailing whitespace, no control characters, and exactly one `authorization` entry.
Lenient parsing would let a proxy and the gateway disagree about who is calling.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from gateway.core.errors import ApiError, ErrorKind

DEVICES_READ = "devices:read"
REQUESTS_READ = "requests:read"
REQUESTS_WRITE = "requests:write"
REQUESTS_READ_ALL = "requests:read:all"
ADMIN = "admin"
# Erasing citizens' contact data (docs/personal-data.md): given to the data protection
# officer's client on purpose, never implied by admin.
DATA_PROTECTION = "data-protection"
SCOPES = frozenset({DEVICES_READ, REQUESTS_READ, REQUESTS_WRITE, REQUESTS_READ_ALL, ADMIN, DATA_PROTECTION})
ACTOR_KINDS = frozenset({"citizen", "opd_staff", "command_center", "system"})

# Scopes that imply others: read:all includes read; admin includes everything but erasure.
_IMPLIED = {REQUESTS_READ_ALL: {REQUESTS_READ}, ADMIN: set(SCOPES) - {DATA_PROTECTION}}

# RFC 6750 section 2.1: credentials = "Bearer" 1*SP b64token; one SP is what clients send.
_BEARER = re.compile(r"Bearer ([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class TokenFileError(ValueError):
    """The token file cannot be used (the gateway refuses to start with it)."""


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    client_id: str
    opd_code: str = ""
    scopes: frozenset[str] = field(default_factory=frozenset)
    actor_kind: str = "opd_staff"
    rate_limit_rps: float | None = None
    rate_limit_burst: float | None = None

    def has(self, scope: str) -> bool:
        return scope in self.effective_scopes

    @cached_property  # asked on every call (require, has): computed once per principal
    def effective_scopes(self) -> frozenset[str]:
        result = set(self.scopes)
        for scope in self.scopes:
            result |= _IMPLIED.get(scope, set())
        return frozenset(result)

    def require(self, scope: str, action: str) -> None:
        if not self.has(scope):
            have = ", ".join(sorted(self.scopes)) or "none"
            raise ApiError(
                ErrorKind.PERMISSION_DENIED,
                f"{action} needs scope {scope}; client {self.client_id} has: {have}",
            )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """Looks callers up by the hash of their bearer token."""

    def __init__(self, principals: Mapping[str, Principal]) -> None:
        self._by_hash = dict(principals)

    def __len__(self) -> int:
        return len(self._by_hash)

    def client_ids(self) -> list[str]:
        return sorted({principal.client_id for principal in self._by_hash.values()})

    @classmethod
    def load(cls, path: Path) -> TokenStore:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise TokenFileError(f"cannot read token file {path}: {exc}") from exc
        return cls.from_mapping(data, str(path))

    @classmethod
    def from_mapping(cls, data: Any, source: str = "token file") -> TokenStore:
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), dict):
            raise TokenFileError(f"{source}: expected a mapping with a 'tokens' mapping")
        principals = {}
        for digest, entry in data["tokens"].items():
            principals[str(digest).lower()] = _principal(str(digest), entry, source)
        return cls(principals)

    def authenticate_metadata(self, metadata: Sequence[tuple[str, str]]) -> Principal:
        """The caller of a call's metadata (keys lower-case): exactly one `authorization` entry."""
        values = [value for key, value in metadata if key == "authorization"]
        if len(values) > 1:
            raise ApiError(
                ErrorKind.UNAUTHENTICATED,
                f"{len(values)} authorization headers sent; send exactly one 'authorization: Bearer <token>'",
            )
        return self.authenticate(values[0] if values else None)

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller of an `authorization` metadata value, or UNAUTHENTICATED."""
        if not authorization:
            raise ApiError(ErrorKind.UNAUTHENTICATED, "missing 'authorization: Bearer <token>' metadata")
        match = _BEARER.fullmatch(authorization)
        if match is None:
            raise ApiError(ErrorKind.UNAUTHENTICATED, _malformed(authorization))
        principal = self._by_hash.get(hash_token(match.group(1)))
        if principal is None:
            raise ApiError(ErrorKind.UNAUTHENTICATED, "unknown bearer token")
        return principal


def _malformed(authorization: str) -> str:
    """Why an `authorization` value is not exactly `Bearer <token>` (the value is not echoed)."""
    if authorization != authorization.strip():
        problem = "has leading or trailing whitespace"
    elif re.match(r"Bearer(\s{2,}|[^ \S])", authorization, re.IGNORECASE):
        problem = "must separate the scheme and the token with exactly one space"
    elif _CONTROL.search(authorization):
        problem = "contains a control character"
    elif re.match(r"Bearer ", authorization, re.IGNORECASE):
        problem = "holds a token outside RFC 6750's b64token characters (A-Z a-z 0-9 - . _ ~ + / =)"
    else:
        problem = "does not use the Bearer scheme"
    return f"authorization metadata must be exactly 'Bearer <token>': it {problem}"


def _principal(digest: str, entry: Any, source: str) -> Principal:
    where = f"{source}: token {digest[:12]}…"
    if not _HEX64.match(digest.lower()):
        raise TokenFileError(f"{where}: the key must be the SHA-256 hex digest of the token")
    if not isinstance(entry, dict) or not entry.get("client_id"):
        raise TokenFileError(f"{where}: needs at least client_id and scopes")
    scopes = frozenset(str(s) for s in entry.get("scopes") or [])
    unknown = scopes - SCOPES
    if unknown:
        raise TokenFileError(f"{where}: unknown scope(s) {sorted(unknown)}; known: {sorted(SCOPES)}")
    opd_code = str(entry.get("opd_code") or "")
    actor_kind = str(entry.get("actor_kind") or ("opd_staff" if opd_code else "citizen"))
    if actor_kind not in ACTOR_KINDS:
        raise TokenFileError(f"{where}: actor_kind must be one of {sorted(ACTOR_KINDS)}")
    rps, burst = entry.get("rate_limit_rps"), entry.get("rate_limit_burst")
    return Principal(
        client_id=str(entry["client_id"]),
        opd_code=opd_code,
        scopes=scopes,
        actor_kind=actor_kind,
        rate_limit_rps=float(rps) if rps is not None else None,
        rate_limit_burst=float(burst) if burst is not None else None,
    )


# ---------------- who may see and change which request ----------------


def can_see_request(principal: Principal, opd_code: str, submitted_by: str) -> bool:
    """Requests routed to the caller's OPD, the caller's own submissions, or all with read:all."""
    if not principal.has(REQUESTS_READ):
        return False
    if principal.has(REQUESTS_READ_ALL):
        return True
    own_opd = bool(principal.opd_code) and principal.opd_code == opd_code
    return own_opd or submitted_by == principal.client_id


def sees_reporter(principal: Principal, opd_code: str) -> bool:
    """Reporter contact details are personal data: only the OPD the request is routed to."""
    return bool(principal.opd_code) and principal.opd_code == opd_code


def can_transition(principal: Principal, opd_code: str) -> bool:
    """Lifecycle changes belong to the OPD the request is routed to (or an admin)."""
    if not principal.has(REQUESTS_WRITE):
        return False
    return principal.has(ADMIN) or (bool(principal.opd_code) and principal.opd_code == opd_code)


# ---------------- rate limits ----------------


@dataclass
class TokenBucket:
    """Classic token bucket: `rate` tokens per second, at most `burst` saved up."""

    rate: float
    burst: float
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:  # first use: a full bucket
            self.tokens, self.updated = self.burst, now
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """One bucket per client (clients come from the token file, so the map stays bounded)."""

    def __init__(self, rate: float, burst: float) -> None:
        self._rate, self._burst = rate, burst
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, principal: Principal, now: float) -> None:
        bucket = self._buckets.get(principal.client_id)
        if bucket is None:
            rate = principal.rate_limit_rps or self._rate
            burst = principal.rate_limit_burst or max(self._burst, 1.0)
            bucket = self._buckets[principal.client_id] = TokenBucket(rate, burst)
        if not bucket.take(now):
            raise ApiError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"rate limit of {bucket.rate:g} calls/s (burst {bucket.burst:g}) exceeded "
                f"by client {principal.client_id}; retry later",
            )
