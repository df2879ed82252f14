"""Each command applied once: records in, what to store and what to emit out. No Kafka here.

Kafka delivers at least once: after a crash, commands since the last committed offset come
again, while the table may already hold their effect. A redelivered command (its id is in the
record's recent outcomes) re-emits its original outcome instead of being applied a second time,
and a command that was rejected stays rejected even if the request moved on since. Commands for
unknown ids are remembered the same way.

Possible-duplicate flags are decided over every partition's requests (core/duplicates.py) and
applied afterwards with `process_duplicates`: same version, no event.

The worker applies commands a batch at a time (`process_commands`): each record read once,
the commands applied to it in order, each changed record kept once (the last one), and the
request's state published once, after the last command of the batch that changed it. Every
command still has its own outcome events, in order.

`Ledger` is the stream processor's logic over plain dicts: what the Faust worker does, minus
Kafka.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from citizen_requests.core.duplicates import DuplicateIndex, candidate_of
from citizen_requests.core.lifecycle import (
    DEFAULT_HISTORY_LIMIT,
    LifecycleOutcome,
    flag_overdue,
    handle_command,
    set_duplicates,
)
from citizen_requests.core.records import RequestRecord, StoredEvents
from citizen_requests.core.routing import RequestsConfig
from smartcity.v1 import requests_pb2 as pb

DEFAULT_OUTCOME_MEMORY = 64


@dataclass
class Processed:
    """The result of one command or tick: what to store and what to emit."""

    record: RequestRecord
    # To requests.events.v1, in order, each with the request attached.
    events: list[pb.RequestEvent]
    # To requests.state.v1 (None: nothing to publish).
    state: pb.ServiceRequest | None
    # False when the stored record did not change (nothing to write back).
    record_changed: bool
    # True when the command had been processed before and its outcome is re-emitted.
    replayed: bool = False
    outcome: LifecycleOutcome | None = None


def _without_request(event: pb.RequestEvent) -> pb.RequestEvent:
    copy = pb.RequestEvent()
    copy.CopyFrom(event)
    copy.ClearField("request")
    return copy


def _replay(record: RequestRecord, command: pb.RequestCommand,
            events: Sequence[pb.RequestEvent]) -> Processed:
    """The stored outcome again, with the request as it stands now and the caller's correlation id."""
    replayed = []
    for stored in events:
        event = pb.RequestEvent()
        event.CopyFrom(stored)
        event.correlation_id = command.correlation_id or stored.correlation_id
        if record.request is not None:
            event.request.CopyFrom(record.request)
        replayed.append(event)
    return Processed(record, replayed, record.request, record_changed=False, replayed=True)


def process_command(record: RequestRecord | None, command: pb.RequestCommand, config: RequestsConfig, *,
                    outcome_memory: int = DEFAULT_OUTCOME_MEMORY,
                    history_limit: int = DEFAULT_HISTORY_LIMIT) -> Processed:
    """Applies a command to its record once: a command id seen before re-emits its outcome."""
    record = record or RequestRecord()
    seen = record.outcome_of(command.command_id)
    if seen is not None:
        return _replay(record, command, seen)
    outcome = handle_command(record.request, command, config, history_limit)
    remembered = StoredEvents.of(_without_request(e) for e in outcome.events)
    outcomes = [*record.outcomes, (command.command_id, remembered)]
    new_record = RequestRecord(outcome.request, outcomes[-outcome_memory:])
    return Processed(new_record, outcome.events, outcome.request if outcome.changed else None,
                     record_changed=True, outcome=outcome)


def process_tick(record: RequestRecord | None, as_of: float,
                 history_limit: int = DEFAULT_HISTORY_LIMIT) -> Processed:
    """Flags the SLA breaches of a record as of `as_of` (idempotent: each kind once)."""
    record = record or RequestRecord()
    outcome = flag_overdue(record.request, as_of, history_limit)
    if not outcome.changed:
        return Processed(record, [], None, record_changed=False, outcome=outcome)
    return Processed(RequestRecord(outcome.request, record.outcomes), outcome.events, outcome.request,
                     record_changed=True, outcome=outcome)


def process_duplicates(record: RequestRecord | None, flags: Iterable[str]) -> Processed:
    """Replaces the possible-duplicate flags of a record's request (no event, same version).

    The request's state is published even when its flags were already these: flags are sent
    again only when the statistics stage finds the request without them, which is also what a
    crash between this record's write and its publication leaves behind.
    """
    record = record or RequestRecord()
    outcome = set_duplicates(record.request, flags)
    if not outcome.changed:
        known = record.request is not None and bool(record.request.request_id)
        return Processed(record, [], record.request if known else None, record_changed=False,
                         outcome=outcome)
    return Processed(RequestRecord(outcome.request, record.outcomes), [], outcome.request,
                     record_changed=True, outcome=outcome)


@dataclass
class CommandBatch:
    """What a batch of commands did, command by command, and per request at the end."""

    # One per command, in the batch's order.
    processed: list[Processed] = field(default_factory=list)
    # Each record the batch changed, as the batch leaves it (insertion order: first change).
    records: dict[str, RequestRecord] = field(default_factory=dict)
    # Index of a command -> the state to publish after its events: each request's state once,
    # at the last command that produced one (the same request that command left).
    states: dict[int, pb.ServiceRequest] = field(default_factory=dict)


def process_commands(load: Callable[[str], RequestRecord | None], commands: Sequence[pb.RequestCommand],
                     config: RequestsConfig, *, outcome_memory: int = DEFAULT_OUTCOME_MEMORY,
                     history_limit: int = DEFAULT_HISTORY_LIMIT) -> CommandBatch:
    """Applies commands in order; `load` is asked once per request id, before its first command."""
    batch = CommandBatch()
    current: dict[str, RequestRecord | None] = {}
    last_state: dict[str, int] = {}
    for index, command in enumerate(commands):
        request_id = command.request_id
        record = current[request_id] if request_id in current else load(request_id)
        processed = process_command(record, command, config, outcome_memory=outcome_memory,
                                    history_limit=history_limit)
        if processed.record_changed:
            record = batch.records[request_id] = processed.record
        current[request_id] = record
        if processed.state is not None:
            last_state[request_id] = index
        batch.processed.append(processed)
    for index in sorted(last_state.values()):
        state = batch.processed[index].state
        assert state is not None
        batch.states[index] = state
    return batch


def summary_of(request: pb.ServiceRequest) -> pb.ServiceRequest:
    """The request without what aggregation does not need: no personal data, texts or history."""
    summary = pb.ServiceRequest()
    summary.CopyFrom(request)
    for name in ("reporter", "encrypted_reporter", "history", "description", "title", "media_url", "address"):
        summary.ClearField(name)
    return summary


class Ledger:
    """The stream processor's logic over plain dicts: one record per request id, one index.

    What the Faust worker does per partition, minus Kafka: the tests compute expected states
    with it, and it documents the processing order in a few lines.
    """

    def __init__(self, config: RequestsConfig, *, outcome_memory: int = DEFAULT_OUTCOME_MEMORY,
                 history_limit: int = DEFAULT_HISTORY_LIMIT) -> None:
        self.config = config
        self.outcome_memory = outcome_memory
        self.history_limit = history_limit
        self.records: dict[str, RequestRecord] = {}
        self.duplicates = DuplicateIndex(config.duplicate_distance_m, config.duplicate_window_s)

    def command(self, command: pb.RequestCommand) -> Processed:
        """The command's own outcome (flags it decides reach the records right after it)."""
        processed = process_command(self.records.get(command.request_id), command, self.config,
                                    outcome_memory=self.outcome_memory, history_limit=self.history_limit)
        self._keep(command.request_id, processed)
        return processed

    def tick(self, request_id: str, as_of: float) -> Processed:
        processed = process_tick(self.records.get(request_id), as_of, self.history_limit)
        self._keep(request_id, processed)
        return processed

    def requests(self) -> dict[str, pb.ServiceRequest]:
        return {rid: rec.request for rid, rec in self.records.items() if rec.request is not None}

    def _keep(self, request_id: str, processed: Processed) -> None:
        if processed.record_changed:
            self.records[request_id] = processed.record
        candidate = None if processed.state is None else candidate_of(processed.state)
        if candidate is not None:
            for flagged, flags in self.duplicates.add(candidate).items():
                self.records[flagged] = process_duplicates(self.records.get(flagged), flags).record
