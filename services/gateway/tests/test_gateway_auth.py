"""Tokens, scopes, request visibility and rate limits (pure)."""

from __future__ import annotations

import hashlib

import pytest

from gateway.config import DEV_TOKENS_FILE
from gateway.core.auth import (
    ADMIN,
    DATA_PROTECTION,
    DEVICES_READ,
    REQUESTS_READ,
    REQUESTS_READ_ALL,
    REQUESTS_WRITE,
    Principal,
    RateLimiter,
    TokenBucket,
    TokenFileError,
    TokenStore,
    can_see_request,
    can_transition,
    hash_token,
    sees_reporter,
)
from gateway.core.errors import ApiError, ErrorKind

DPMPTSP = Principal("dpmptsp-app", "DPMPTSP", frozenset({DEVICES_READ, REQUESTS_READ, REQUESTS_WRITE}))
BPBD = Principal("bpbd-app", "BPBD", frozenset({REQUESTS_READ, REQUESTS_WRITE}))
CENTER = Principal("command-center", "", frozenset({REQUESTS_READ_ALL, REQUESTS_WRITE}), "command_center")
PORTAL = Principal("citizen-portal", "", frozenset({REQUESTS_READ, REQUESTS_WRITE}), "citizen")
ADMIN_P = Principal("admin", "", frozenset({ADMIN}), "system")
DEVICES_ONLY = Principal("dash", "", frozenset({DEVICES_READ}))


def store() -> TokenStore:
    return TokenStore.from_mapping(
        {
            "tokens": {
                hash_token("secret-1"): {
                    "client_id": "dpmptsp-app",
                    "opd_code": "DPMPTSP",
                    "scopes": [DEVICES_READ, REQUESTS_READ],
                },
                hash_token("secret-2").upper(): {
                    "client_id": "admin",
                    "scopes": [ADMIN],
                    "actor_kind": "system",
                    "rate_limit_rps": 5,
                },
            }
        }
    )


def test_token_hash_is_sha256_hex() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()


def test_authenticates_known_tokens_by_hash() -> None:
    tokens = store()
    caller = tokens.authenticate("Bearer secret-1")
    assert (caller.client_id, caller.opd_code, caller.actor_kind) == ("dpmptsp-app", "DPMPTSP", "opd_staff")
    admin = tokens.authenticate("bearer secret-2")
    assert admin.client_id == "admin" and admin.rate_limit_rps == 5.0


@pytest.mark.parametrize(
    "header, says",
    [
        (None, "missing"),
        ("", "missing"),
        ("secret-1", "Bearer <token>"),
        ("Basic c2VjcmV0", "Bearer <token>"),
        ("Bearer wrong", "unknown bearer token"),
        ("Bearer secret-1 extra", "Bearer <token>"),
    ],
)
def test_rejects_bad_authorization(header: str | None, says: str) -> None:
    with pytest.raises(ApiError) as err:
        store().authenticate(header)
    assert err.value.kind is ErrorKind.UNAUTHENTICATED and says in err.value.message


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_case_insensitive(scheme: str) -> None:
    assert store().authenticate(f"{scheme} secret-1").client_id == "dpmptsp-app"


@pytest.mark.parametrize(
    "header, says",
    [
        (" Bearer secret-1", "leading or trailing whitespace"),
        ("Bearer secret-1 ", "leading or trailing whitespace"),
        ("Bearer secret-1\n", "leading or trailing whitespace"),
        ("Bearer secret-1\r\n", "leading or trailing whitespace"),
        ("Bearer secret-1\t", "leading or trailing whitespace"),
        ("Bearer  secret-1", "one space"),
        ("Bearer\tsecret-1", "one space"),
        ("Bearer secret\x00-1", "control character"),
        ("Bearer secret\x7f-1", "control character"),
        ("Bearer secret-1,x", "RFC 6750"),
        ("Bearer", "Bearer <token>"),
        ("Bearer ", "leading or trailing whitespace"),
    ],
)
def test_only_exactly_bearer_space_token_is_accepted(header: str, says: str) -> None:
    """RFC 6750 section 2.1: `Bearer` SP b64token; no whitespace or control characters around it."""
    with pytest.raises(ApiError) as err:
        store().authenticate(header)
    assert err.value.kind is ErrorKind.UNAUTHENTICATED and says in err.value.message


def test_two_authorization_headers_are_refused() -> None:
    with pytest.raises(ApiError) as err:
        store().authenticate_metadata(
            [("authorization", "Bearer secret-1"), ("authorization", "Bearer secret-2")]
        )
    assert err.value.kind is ErrorKind.UNAUTHENTICATED and "2 authorization headers" in err.value.message
    one = store().authenticate_metadata([("x-other", "a"), ("authorization", "Bearer secret-1")])
    assert one.client_id == "dpmptsp-app"


@pytest.mark.parametrize(
    "entry, says",
    [
        ({"not-a-hash": {"client_id": "x", "scopes": []}}, "SHA-256"),
        ({hash_token("a"): {"scopes": [DEVICES_READ]}}, "client_id"),
        ({hash_token("a"): {"client_id": "x", "scopes": ["devices:write"]}}, "unknown scope"),
        ({hash_token("a"): {"client_id": "x", "scopes": [], "actor_kind": "robot"}}, "actor_kind"),
    ],
)
def test_token_file_mistakes_are_refused(entry: dict[str, object], says: str) -> None:
    with pytest.raises(TokenFileError, match=says):
        TokenStore.from_mapping({"tokens": entry})


def test_token_file_must_have_tokens_mapping() -> None:
    with pytest.raises(TokenFileError):
        TokenStore.from_mapping(["x"])


def test_dev_tokens_file_has_the_documented_clients() -> None:
    tokens = TokenStore.load(DEV_TOKENS_FILE)
    expected = {
        "dev-dpmptsp": ("DPMPTSP", REQUESTS_WRITE),
        "dev-dinkes": ("DINKES", REQUESTS_WRITE),
        "dev-bpbd": ("BPBD", REQUESTS_WRITE),
        "dev-dinkominfo": ("DINKOMINFO", DEVICES_READ),
        "dev-command-center": ("COMMAND_CENTER", REQUESTS_READ_ALL),
        "dev-admin": ("", ADMIN),
        "dev-data-protection": ("", DATA_PROTECTION),
    }
    for token, (opd, scope) in expected.items():
        caller = tokens.authenticate(f"Bearer {token}")
        assert caller.opd_code == opd and caller.has(scope), token
    assert not tokens.authenticate("Bearer dev-command-center").has(ADMIN)
    dpo = tokens.authenticate("Bearer dev-data-protection")
    assert dpo.effective_scopes == {DATA_PROTECTION}  # erasure and nothing else


def test_scopes_imply_their_narrower_scopes() -> None:
    assert CENTER.has(REQUESTS_READ) and not CENTER.has(DEVICES_READ)
    assert all(ADMIN_P.has(s) for s in (DEVICES_READ, REQUESTS_READ, REQUESTS_WRITE, REQUESTS_READ_ALL))
    assert not ADMIN_P.has(DATA_PROTECTION)  # erasing citizens' data is given on purpose, never implied
    with pytest.raises(ApiError) as err:
        DEVICES_ONLY.require(REQUESTS_READ, "GetRequest")
    assert err.value.kind is ErrorKind.PERMISSION_DENIED
    assert "GetRequest needs scope requests:read" in err.value.message and "dash" in err.value.message


@pytest.mark.parametrize(
    "principal, opd, submitted_by, expected",
    [
        (DPMPTSP, "DPMPTSP", "citizen-portal", (True, True, True)),
        (DPMPTSP, "BPBD", "citizen-portal", (False, False, False)),
        (BPBD, "BPBD", "bpbd-app", (True, True, True)),
        (CENTER, "BPBD", "citizen-portal", (True, False, False)),
        (PORTAL, "DPMPTSP", "citizen-portal", (True, False, False)),
        (PORTAL, "DPMPTSP", "someone-else", (False, False, False)),
        (ADMIN_P, "DLH", "x", (True, False, True)),
        (DEVICES_ONLY, "DLH", "dash", (False, False, False)),
    ],
)
def test_request_visibility_matrix(
    principal: Principal, opd: str, submitted_by: str, expected: tuple[bool, bool, bool]
) -> None:
    sees, reporter, transitions = expected
    assert can_see_request(principal, opd, submitted_by) is sees
    assert sees_reporter(principal, opd) is reporter
    assert can_transition(principal, opd) is transitions


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(100.5) and not bucket.take(100.5)  # half a second refills one token
    assert [bucket.take(200.0) for _ in range(4)] == [True, True, True, False]  # never above the burst


def test_rate_limiter_is_per_client_with_overrides() -> None:
    limiter = RateLimiter(rate=1.0, burst=2.0)
    limiter.check(DPMPTSP, 0.0)
    limiter.check(DPMPTSP, 0.0)
    with pytest.raises(ApiError) as err:
        limiter.check(DPMPTSP, 0.0)
    assert err.value.kind is ErrorKind.RESOURCE_EXHAUSTED and "dpmptsp-app" in err.value.message
    limiter.check(BPBD, 0.0)  # another client has its own bucket
    generous = Principal("bulk", "", frozenset(), rate_limit_rps=100.0, rate_limit_burst=50.0)
    for _ in range(50):
        limiter.check(generous, 0.0)
