"""Keyset pagination (pure)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.errors import ApiError, ErrorKind
from gateway.core.paging import decode_token, encode_token, paginate


def key(item: tuple[str, int]) -> tuple[str, int]:
    return item


def all_pages(items: list[tuple[str, int]], size: int, fp: str = "f") -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    token = ""
    for _ in range(len(items) + 2):
        page = paginate(items, key, size, token, filter_fp=fp)
        assert page.total_size == len(items)
        out += page.items
        token = page.next_page_token
        if not token:
            return out
    raise AssertionError("pagination did not end")


@given(st.lists(st.tuples(st.text(max_size=5), st.integers()), unique=True), st.integers(1, 7))
def test_pages_cover_every_item_once_in_order(raw: list[tuple[str, int]], size: int) -> None:
    items = sorted(raw)
    assert all_pages(items, size) == items


def test_last_page_has_no_token() -> None:
    items = [("a", 1), ("b", 2)]
    assert paginate(items, key, 2, "", filter_fp="f").next_page_token == ""
    assert paginate([], key, 2, "", filter_fp="f").items == []


def test_items_added_before_the_cursor_do_not_repeat_items() -> None:
    items = [("b", 1), ("d", 1), ("f", 1)]
    first = paginate(items, key, 2, "", filter_fp="f")
    assert first.items == [("b", 1), ("d", 1)]
    grown = sorted([*items, ("a", 1), ("e", 1)])
    second = paginate(grown, key, 2, first.next_page_token, filter_fp="f")
    assert second.items == [("e", 1), ("f", 1)]


def test_token_is_bound_to_its_filter() -> None:
    token = encode_token(("x", 1), "filter-a")
    assert decode_token(token, "filter-a") == ("x", 1)
    with pytest.raises(ApiError) as err:
        decode_token(token, "filter-b")
    assert err.value.kind is ErrorKind.INVALID_ARGUMENT and "different filter" in err.value.message


@pytest.mark.parametrize(
    "token", ["%%%", "bm90IGpzb24", "e30", "eyJmIjoiZiIsImsiOjF9", "eyJmIjoiZiIsImsiOlt7fV19"]
)
def test_garbage_tokens_are_invalid_argument(token: str) -> None:
    with pytest.raises(ApiError) as err:
        paginate([("a", 1)], key, 1, token, filter_fp="f")
    assert err.value.kind is ErrorKind.INVALID_ARGUMENT and err.value.message.startswith("page_token")


def test_token_of_another_key_shape_is_invalid_argument() -> None:
    token = encode_token((1.5, 2), "f")  # keys of this listing are (str, int)
    with pytest.raises(ApiError) as err:
        paginate([("a", 1)], key, 1, token, filter_fp="f")
    assert err.value.kind is ErrorKind.INVALID_ARGUMENT


def raw_token(payload: str) -> str:
    """A token shaped like the API's own (base64url JSON) but holding what the test chooses."""
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "payload",
    [
        '{"f":"f","k":["a",NaN]}',
        '{"f":"f","k":["a",Infinity]}',
        '{"f":"f","k":["a",-Infinity]}',
        '{"f":"f","k":[NaN]}',
    ],
)
def test_tokens_holding_nan_or_infinity_are_invalid_argument(payload: str) -> None:
    with pytest.raises(ApiError) as err:
        paginate([("a", 1), ("b", 2)], key, 1, raw_token(payload), filter_fp="f")
    assert err.value.kind is ErrorKind.INVALID_ARGUMENT and err.value.message.startswith("page_token")


@pytest.mark.parametrize(
    "payload",
    ['{"f":"f","k":["a"]}', '{"f":"f","k":["a",1,2]}', '{"f":"f","k":[]}', '{"f":"f","k":["a",true]}'],
)
def test_tokens_of_the_wrong_arity_or_types_are_invalid_argument(payload: str) -> None:
    with pytest.raises(ApiError) as err:
        paginate([("a", 1), ("b", 2)], key, 1, raw_token(payload), filter_fp="f")
    assert err.value.kind is ErrorKind.INVALID_ARGUMENT and err.value.message.startswith("page_token")


def test_a_token_of_the_right_shape_still_pages() -> None:
    page = paginate([("a", 1), ("b", 2)], key, 1, raw_token('{"f":"f","k":["a",1]}'), filter_fp="f")
    assert page.items == [("b", 2)]
