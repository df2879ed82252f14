"""Keyset pagination over in-memory listings. Pure.

A page token carries the sort key of the last item returned and a fingerprint of the filter it
was issued for, so the next page starts right after that item even when items were added or
removed in between (no skips or repeats of unchanged items), and a token cannot be replayed
against a different filter. A token is refused (INVALID_ARGUMENT) unless its key has the shape of
the listing's keys: the same number of parts, each a string where the listing has a string and
a finite number where it has a number (NaN and Infinity compare with nothing, so a cursor holding
them would silently return an empty or a wrong page).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.core.errors import invalid

T = TypeVar("T")
SortKey = tuple[str | int | float, ...]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str
    total_size: int


def fingerprint(filter_bytes: bytes) -> str:
    """A short digest of the filter a token belongs to (the request minus its paging fields)."""
    return hashlib.sha256(filter_bytes).hexdigest()[:16]


def encode_token(key: SortKey, filter_fp: str) -> str:
    raw = json.dumps({"f": filter_fp, "k": list(key)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, filter_fp: str, field: str = "page_token") -> SortKey:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw, parse_constant=_refuse_constant)
        key = data["k"]
        token_fp = data["f"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise invalid(field, "is not a page token of this API") from exc
    if not isinstance(key, list) or not all(_is_key_part(k) for k in key):
        raise invalid(field, "is not a page token of this API")
    if token_fp != filter_fp:
        raise invalid(field, "was issued for a different filter; repeat the first call's filter")
    return tuple(key)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a sort key")


def _is_key_part(part: object) -> bool:
    if isinstance(part, bool):  # JSON true/false: bool is an int subclass in Python
        return False
    return isinstance(part, str | int) or (isinstance(part, float) and math.isfinite(part))


def _same_shape(cursor: SortKey, sample: SortKey) -> bool:
    """Whether a cursor has the listing's key shape: same arity, strings for strings, numbers for numbers."""
    if len(cursor) != len(sample):
        return False
    return all(isinstance(c, str) == isinstance(s, str) for c, s in zip(cursor, sample, strict=True))


def paginate(
    items: Sequence[T],
    key: Callable[[T], SortKey],
    size: int,
    token: str,
    *,
    filter_fp: str,
    field: str = "page_token",
) -> Page[T]:
    """`items` must already be sorted by `key`; returns the page after the token's position."""
    start = 0
    if token:
        after = decode_token(token, filter_fp, field)
        if items and not _same_shape(after, key(items[0])):
            raise invalid(field, "is not a page token of this listing")
        try:
            # Keys of the log(n) probed items only, not of the whole listing.
            start = bisect.bisect_right(items, after, key=key)
        except TypeError as exc:  # a token whose key has other types than this listing's keys
            raise invalid(field, "is not a page token of this listing") from exc
    chunk = list(items[start : start + size])
    more = start + size < len(items)
    next_token = encode_token(key(chunk[-1]), filter_fp) if chunk and more else ""
    return Page(items=chunk, next_page_token=next_token, total_size=len(items))
