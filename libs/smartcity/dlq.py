"""Dead-letter handling: a message that cannot be decoded or validated is kept, not lost.

The dead letter is the original key, value and headers, plus headers saying why and where from:
`dlq.error`, `dlq.source.topic`, `dlq.source.partition`, `dlq.source.offset`, `dlq.service`,
`dlq.time` (ms since epoch). It goes to `<source topic>.dlq`.

From a topic that may hold personal data the original bytes are redacted or withheld
(smartcity.personal_data.dead_letters); `dlq.payload` then says which.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from smartcity.personal_data.dead_letters import dead_letter_payload
from smartcity.topics import DLQ_SUFFIX

Headers = list[tuple[str, bytes]]

DEAD_LETTERS = Counter(
    "smartcity_dead_letters_total",
    "Messages sent to a dead-letter topic because they could not be decoded or validated",
    ["service", "topic"],
)

_MAX_ERROR_BYTES = 1000


@dataclass(frozen=True)
class SourceRecord:
    """Where a consumed message came from: enough to find it again."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()
    # The protobuf type of `value` when it is not the topic's own (one reading taken out of a
    # batch message): what a personal-data redactor parses it as.
    value_type: str = ""


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers


def dead_letter_for(record: SourceRecord, error: str, service: str,
                    extra_headers: Sequence[tuple[str, bytes]] = ()) -> DeadLetter:
    """Builds the dead letter of a record: its bytes (untouched unless they may hold personal
    data), the reason in headers (`extra_headers` too: where inside a batch message the bad
    item was)."""
    reason = error.encode("utf-8", "replace")[:_MAX_ERROR_BYTES]
    headers: Headers = [(k, v) for k, v in record.headers if not k.startswith("dlq.")]
    headers += [
        ("dlq.error", reason),
        ("dlq.source.topic", record.topic.encode()),
        ("dlq.source.partition", str(record.partition).encode()),
        ("dlq.source.offset", str(record.offset).encode()),
        ("dlq.service", service.encode()),
        ("dlq.time", str(int(time.time() * 1000)).encode()),
        *extra_headers,
    ]
    payload = dead_letter_payload(record.topic, record.value, record.value_type)
    if payload.treatment:
        headers.append(("dlq.payload", payload.treatment.encode()))
    return DeadLetter(topic=record.topic + DLQ_SUFFIX, key=record.key, value=payload.value,
                      headers=headers)


SendFunction = Callable[[DeadLetter], Awaitable[None]]


class DeadLetterPublisher:
    """Publishes dead letters through any async send function and counts them."""

    def __init__(self, service: str, send: SendFunction) -> None:
        self._service = service
        self._send = send

    async def publish(self, record: SourceRecord, error: str,
                      extra_headers: Sequence[tuple[str, bytes]] = ()) -> DeadLetter:
        letter = dead_letter_for(record, error, self._service, extra_headers)
        await self._send(letter)
        DEAD_LETTERS.labels(service=self._service, topic=record.topic).inc()
        return letter


def aiokafka_sender(producer: object) -> SendFunction:
    """A send function over an started aiokafka producer (waits for the broker's ack)."""

    async def send(letter: DeadLetter) -> None:
        await producer.send_and_wait(  # type: ignore[attr-defined]
            letter.topic, value=letter.value, key=letter.key, headers=letter.headers
        )

    return send
