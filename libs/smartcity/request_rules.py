"""The rules of a citizen request that the gateway and citizen-requests must agree on. Pure.

Both sides read these from here, so a request the gateway lets through is one the domain can
accept, and a request the gateway lists as open or overdue is one the domain counts the same way.

Text limits (characters, counted before stripping):

    title <= 200 (optional)    description <= 4000 (required)    address <= 500
    media_url <= 2048          note, reason or comment <= 2000

The title is optional. citizen-requests is the authority over what a request is, and it has
never required one: an Open311 GeoReport v2 post has no title at all (its required text is the
description), and producers other than the gateway (the simulator, imports) submit without it.
A gateway that demanded a title would turn away requests the city accepts through its other
doors. The description is what the OPD acts on, so it is required on both sides.
A note that is too long: the gateway refuses it at its door; the domain, receiving it from
another producer, keeps the first MAX_NOTE characters rather than failing the command.

Characters (`text_problem`): citizens write paragraphs, so the multi-line texts (description,
address, notes, reasons, comments) accept TAB, LF and CRLF. Everything else that is not text
is refused, in every field:

- the other C0 controls U+0000-U+001F, DEL U+007F and the C1 controls U+0080-U+009F. NUL is
  among them on purpose: it truncates C strings and PostgreSQL refuses it in text, so an OPD
  system downstream would lose or reject the request. A lone CR is refused as well: it is not a
  line break anyone types, and on a terminal it rewrites the line already shown.
- the bidi embeddings and overrides U+202A-U+202E and the isolates U+2066-U+2069: they make a
  text display differently from what it holds ("Trojan Source", CVE-2021-42574; a reversed file
  name or phone number in a report). Right-to-left scripts (Arabic in Jawi names, quotations)
  need none of them: the Unicode bidi algorithm orders them from their letters. The implicit
  marks LRM/RLM/ALM (U+200E, U+200F, U+061C) stay allowed; they only nudge neutral characters.
- the noncharacters U+FDD0-U+FDEF and U+nFFFE/U+nFFFF of every plane (U+FFFE, U+FFFF, ...,
  U+10FFFF): Unicode reserves them for a program's internal use, never for interchange, and some
  decoders turn them into U+FFFD or drop them, so the text would not arrive as sent.
  (Surrogates cannot occur: protobuf strings are valid UTF-8.)
Single-line texts (title, names, phone, e-mail, URLs) accept no control character at all.

The lifecycle (the domain's table, moved here as it was):

    SUBMITTED -> ACKNOWLEDGED -> ASSIGNED -> IN_PROGRESS -> RESOLVED -> CLOSED
    REJECTED from SUBMITTED or ACKNOWLEDGED; RESOLVED -> IN_PROGRESS on reopen;
    comments on any status but CLOSED and REJECTED.

Open and overdue, one meaning each:

- open: SUBMITTED, ACKNOWLEDGED, ASSIGNED or IN_PROGRESS, i.e. the resolve SLA is running.
  RESOLVED is not open (Open311 shows it closed) although it can still be reopened.
- overdue: open, and an SLA that still waits for its milestone is late. Late means flagged as
  breached by citizen-requests or, when the caller passes `as_of`, a due time before `as_of`
  (exactly at it is in time; an unset due time is never late). The service counts from its
  flags only (event time: the same input gives the same counts); the gateway passes its clock,
  so a request shows overdue before the service's timer has flagged it. An SLA whose milestone
  was reached no longer makes a request overdue: a request acknowledged late is late in its
  history and its flags, but not overdue unless its resolve SLA is late too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from smartcity.v1 import requests_pb2 as pb

# ---- text limits

MAX_TITLE = 200
MAX_DESCRIPTION = 4000
MAX_ADDRESS = 500
MAX_MEDIA_URL = 2048
MAX_NOTE = 2000

TITLE_REQUIRED = False
DESCRIPTION_REQUIRED = True

# Actions whose note is their reason and must not be empty.
REASON_REQUIRED = frozenset({"reject", "reopen"})

# ---- characters (see the module's docstring for why each is refused)

# In every text: controls other than TAB/LF/CR, C1, bidi embeddings/overrides/isolates,
# noncharacters. TAB, LF and CR are judged apart (multi-line texts only, CR only before LF).
_NEVER = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufdd0-\ufdef"
    + "".join(f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17))
    + "]"
)
_LONE_CR = re.compile("\r(?!\n)")
_LINE_BREAK_OR_TAB = re.compile("[\t\n\r]")


def text_problem(value: str, multiline: bool = False) -> str | None:
    """What character of a user text is not allowed and where (None: every one is fine)."""
    found = _NEVER.search(value) or (_LONE_CR if multiline else _LINE_BREAK_OR_TAB).search(value)
    if found is None:
        return None
    char = found.group()
    kind = "a line break or tab in a single-line text" if char in "\t\n\r" and not multiline else _kind(char)
    return f"contains U+{ord(char):04X} ({kind}) at position {found.start()}"


def _kind(char: str) -> str:
    code = ord(char)
    if code <= 0x9F:
        return "a control character" if char != "\r" else "a carriage return not followed by a line feed"
    if 0x202A <= code <= 0x2069:
        return "a bidi embedding, override or isolate"
    return "a noncharacter"


# ---- the lifecycle

# Not yet resolved: the resolve SLA is running.
OPEN_STATUSES = frozenset(
    {
        pb.REQUEST_STATUS_SUBMITTED,
        pb.REQUEST_STATUS_ACKNOWLEDGED,
        pb.REQUEST_STATUS_ASSIGNED,
        pb.REQUEST_STATUS_IN_PROGRESS,
    }
)
# Nothing more can happen to these, not even a comment.
FINAL_STATUSES = frozenset({pb.REQUEST_STATUS_CLOSED, pb.REQUEST_STATUS_REJECTED})
COMMENTABLE_STATUSES = frozenset(OPEN_STATUSES | {pb.REQUEST_STATUS_RESOLVED})


@dataclass(frozen=True)
class Transition:
    """One action of the lifecycle: the statuses it applies to, where it leads, the event it makes."""

    allowed_from: frozenset[pb.RequestStatus]
    # None keeps the status (comments).
    to: pb.RequestStatus | None
    event_type: pb.RequestEventType


_SUBMITTED, _ACKNOWLEDGED = pb.REQUEST_STATUS_SUBMITTED, pb.REQUEST_STATUS_ACKNOWLEDGED
_ASSIGNED, _IN_PROGRESS = pb.REQUEST_STATUS_ASSIGNED, pb.REQUEST_STATUS_IN_PROGRESS
_RESOLVED = pb.REQUEST_STATUS_RESOLVED
_CLOSED, _REJECTED = pb.REQUEST_STATUS_CLOSED, pb.REQUEST_STATUS_REJECTED

# Keyed by the action's name: the field name in RequestCommand's `action` oneof, and the gateway's
# RequestAction value name without its prefix, lower-cased (REQUEST_ACTION_REOPEN -> "reopen").
TRANSITIONS: dict[str, Transition] = {
    "acknowledge": Transition(frozenset({_SUBMITTED}), _ACKNOWLEDGED, pb.REQUEST_EVENT_TYPE_ACKNOWLEDGED),
    "assign": Transition(frozenset({_ACKNOWLEDGED}), _ASSIGNED, pb.REQUEST_EVENT_TYPE_ASSIGNED),
    "start": Transition(frozenset({_ASSIGNED}), _IN_PROGRESS, pb.REQUEST_EVENT_TYPE_STARTED),
    "resolve": Transition(frozenset({_IN_PROGRESS}), _RESOLVED, pb.REQUEST_EVENT_TYPE_RESOLVED),
    "close": Transition(frozenset({_RESOLVED}), _CLOSED, pb.REQUEST_EVENT_TYPE_CLOSED),
    "reject": Transition(frozenset({_SUBMITTED, _ACKNOWLEDGED}), _REJECTED, pb.REQUEST_EVENT_TYPE_REJECTED),
    "reopen": Transition(frozenset({_RESOLVED}), _IN_PROGRESS, pb.REQUEST_EVENT_TYPE_REOPENED),
    "comment": Transition(COMMENTABLE_STATUSES, None, pb.REQUEST_EVENT_TYPE_COMMENTED),
}

# Every action of a RequestCommand: submitting creates the request, the others move it.
ACTIONS = ("submit", *TRANSITIONS)


def allows(action: str, status: int) -> bool:
    """Whether `action` may be applied to a request that is `status` (False for unknown actions)."""
    transition = TRANSITIONS.get(action)
    return transition is not None and status in transition.allowed_from


# ---- open, SLAs, overdue

SLA_KINDS = (pb.SLA_KIND_ACKNOWLEDGE, pb.SLA_KIND_RESOLVE)


def _seconds(stamp: Timestamp) -> float:
    """A protobuf Timestamp as seconds since the epoch (0.0 when unset), as smartcity.codec reads it."""
    return stamp.seconds + stamp.nanos / 1e9


def is_open(request: pb.ServiceRequest) -> bool:
    return request.status in OPEN_STATUSES


def sla_due(request: pb.ServiceRequest, kind: pb.SlaKind) -> float:
    """The due time of one SLA of the request (0.0 when unset)."""
    sla = request.sla
    return _seconds(sla.acknowledge_due if kind == pb.SLA_KIND_ACKNOWLEDGE else sla.resolve_due)


def sla_breached(request: pb.ServiceRequest, kind: pb.SlaKind) -> bool:
    """Whether citizen-requests has flagged this SLA as breached."""
    sla = request.sla
    return sla.acknowledge_breached if kind == pb.SLA_KIND_ACKNOWLEDGE else sla.resolve_breached


def sla_running(request: pb.ServiceRequest, kind: pb.SlaKind) -> bool:
    """Whether the SLA still waits for its milestone (acknowledgement or resolution)."""
    if kind == pb.SLA_KIND_ACKNOWLEDGE:
        return request.status == pb.REQUEST_STATUS_SUBMITTED
    return request.status in OPEN_STATUSES


def sla_late(request: pb.ServiceRequest, kind: pb.SlaKind, as_of: float | None = None) -> bool:
    """A running SLA that is flagged, or (given `as_of`) whose due time lies before `as_of`."""
    if not sla_running(request, kind):
        return False
    if sla_breached(request, kind):
        return True
    due = sla_due(request, kind)
    return as_of is not None and 0 < due < as_of


def is_overdue(request: pb.ServiceRequest, as_of: float | None = None) -> bool:
    """Open with a late SLA (see the module's docstring for what late means)."""
    return any(sla_late(request, kind, as_of) for kind in SLA_KINDS)
