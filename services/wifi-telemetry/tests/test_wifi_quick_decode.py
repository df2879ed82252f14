"""The ingest stage's quick decode of single readings against the general decode-or-dead-letter:
the same readings taken, in the same order, with the same trace contexts, the same dead
letters and the same counts, whatever mix of good, bad and borderline readings comes in."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.context import Context

from smartcity.codec import ProtoCodec
from smartcity.dlq import DeadLetter, DeadLetterPublisher
from smartcity.streams.dead_letters import decode_all_or_dead_letter, decode_all_quickly
from smartcity.streams.metrics import EVENTS_CONSUMED
from smartcity.v1 import wifi_pb2
from wifi_telemetry.adapters.messages import (
    EARLIEST_EVENT_TIME,
    SESSION_CODEC,
    TELEMETRY_CODEC,
    session_is_valid,
    session_problem,
    telemetry_is_valid,
    telemetry_problem,
)

# The general way as it stands without the quick expression (which the codecs share): every
# field checked on its own.
GENERAL_TELEMETRY = ProtoCodec(wifi_pb2.ApTelemetry, telemetry_problem)
GENERAL_SESSION = ProtoCodec(wifi_pb2.ClientSession, session_problem)

TRACEPARENT = ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
_seconds = st.sampled_from([0, EARLIEST_EVENT_TIME - 1, EARLIEST_EVENT_TIME, EARLIEST_EVENT_TIME + 1,
                            1_764_000_000])
_percent = st.sampled_from([0.0, -0.0, 50.0, 100.0, 100.000001, -1.0, math.nan, math.inf])
# Every kind of session event, and one that is none.
_kinds: st.SearchStrategy[Any] = st.sampled_from([*wifi_pb2.SessionEventKind.values(), 4])
_text = st.sampled_from(["", " ", "ap-1", "rsud", "\t"])


def either(good: st.SearchStrategy[Any], any_value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: as often a good one as any (else few readings would pass every check)."""
    return st.one_of(good, any_value)


_good_text = st.sampled_from(["ap-1", "rsud"])


@st.composite
def telemetry_values(draw: st.DrawFn) -> bytes | None:
    if draw(st.integers(0, 9)) == 0:  # no protobuf at all, or a tombstone
        return draw(st.sampled_from([b"\x0a\xff\xff not protobuf", b"\xff", b"", None]))
    percent, text = either(st.just(50.0), _percent), either(_good_text, _text)
    message = wifi_pb2.ApTelemetry(ap_id=draw(text), site_id=draw(text),
                                   seq=draw(st.integers(0, 9)), cpu_percent=draw(percent),
                                   memory_percent=draw(percent))
    message.observed_time.seconds = draw(either(st.just(1_764_000_000), _seconds))
    message.observed_time.nanos = draw(st.sampled_from([0, 1, 999_999_999]))
    return message.SerializeToString()


@st.composite
def session_values(draw: st.DrawFn) -> bytes | None:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([b"\x0a\xff\xff not protobuf", b"\xff", b"", None]))
    text = either(_good_text, _text)
    message = wifi_pb2.ClientSession(ap_id=draw(text), site_id=draw(text), session_id=draw(text),
                                     kind=draw(either(st.just(1), _kinds)), client_hash="ab" * 32)
    message.event_time.seconds = draw(either(st.just(1_764_000_000), _seconds))
    message.event_time.nanos = draw(st.sampled_from([0, 1]))
    return message.SerializeToString()


def events_of(values: list[bytes | None], keys: list[bytes | None], with_trace: list[bool]) -> list[Any]:
    topic = "city.wifi.ap-telemetry.v1"
    return [SimpleNamespace(key=key, value=value,
                            message=SimpleNamespace(topic=topic, partition=2, offset=100 + n,
                                                    headers=[TRACEPARENT] if carried else []))
            for n, (value, key, carried) in enumerate(zip(values, keys, with_trace, strict=True))]


def traced(context: Context) -> Any:
    """What a trace context says (contexts compare by the identity of their span objects)."""
    return trace.get_current_span(context).get_span_context()


def consumed(outcome: str) -> float:
    return float(EVENTS_CONSUMED.labels("wifi-telemetry", "city.wifi.ap-telemetry.v1", outcome)._value.get())


def both_ways(events: list[Any], message_type: Any, quick: Callable[[Any], bool],
              codec: ProtoCodec[Any], general_codec: ProtoCodec[Any]) -> tuple[Any, Any]:
    """(taken, dead letters, counts) of the quick way (with the service's `codec` for what it
    does not pass) and of the general way (`general_codec`, every field checked)."""
    async def run(general: bool) -> tuple[list[Any], list[Any], tuple[float, float]]:
        letters: list[DeadLetter] = []

        async def send(letter: DeadLetter) -> None:
            letters.append(letter)

        publisher = DeadLetterPublisher("wifi-telemetry", send)
        before = consumed("ok"), consumed("dead_letter")
        if general:
            items = await decode_all_or_dead_letter(events, general_codec, publisher, "wifi-telemetry")
            taken = [(i.record.offset, i.value, traced(i.trace_context)) for i in items]
        else:
            accepted = await decode_all_quickly(events, message_type, quick, codec, publisher=publisher,
                                                service="wifi-telemetry")
            taken = [(a.event.message.offset, a.value, traced(a.trace_context)) for a in accepted]
        # Each letter as sent, but for the time it was made at.
        sent = [(letter.topic, letter.key, letter.value, [h for h in letter.headers if h[0] != "dlq.time"])
                for letter in letters]
        return taken, sent, (consumed("ok") - before[0], consumed("dead_letter") - before[1])

    return asyncio.run(run(False)), asyncio.run(run(True))


_keys = st.sampled_from([b"ap-1", None, b"\xff\xfe not text"])


def both_ways_of(events: list[tuple[bytes | None, bytes | None, bool]], *args: Any) -> tuple[Any, Any]:
    """`both_ways` of the events drawn as (value, key, traced) tuples."""
    made = events_of(*map(list, zip(*events, strict=True))) if events else []
    return both_ways(made, *args)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(telemetry_values(), _keys, st.booleans()), max_size=12))
def test_quick_telemetry_decode_takes_and_dead_letters_what_the_general_one_does(
        events: list[tuple[bytes | None, bytes | None, bool]]) -> None:
    quick, general = both_ways_of(events, wifi_pb2.ApTelemetry, telemetry_is_valid, TELEMETRY_CODEC,
                                  GENERAL_TELEMETRY)
    assert quick == general


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(session_values(), _keys, st.booleans()), max_size=12))
def test_quick_session_decode_takes_and_dead_letters_what_the_general_one_does(
        events: list[tuple[bytes | None, bytes | None, bool]]) -> None:
    quick, general = both_ways_of(events, wifi_pb2.ClientSession, session_is_valid, SESSION_CODEC,
                                  GENERAL_SESSION)
    assert quick == general


@pytest.mark.parametrize("broken", [lambda message: True, lambda message: message.cpu_percent <= 100.0])
def test_a_quick_check_that_passes_a_bad_reading_is_caught(broken: Callable[[Any], bool]) -> None:
    """The property above fails when the quick check lets an invalid reading through."""
    bad = wifi_pb2.ApTelemetry(ap_id="ap-1", site_id="rsud", cpu_percent=-1.0)
    bad.observed_time.seconds = EARLIEST_EVENT_TIME + 1
    made = events_of([bad.SerializeToString()], [b"ap-1"], [False])
    quick, general = both_ways(made, wifi_pb2.ApTelemetry, broken, TELEMETRY_CODEC, GENERAL_TELEMETRY)
    assert quick != general
