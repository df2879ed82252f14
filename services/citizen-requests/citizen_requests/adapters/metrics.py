"""Prometheus metrics of citizen-requests. Labels carry categories, OPD codes and types only,
never anything about the reporter. Processing latency and dead letters are the libs' metrics
(`smartcity_processing_latency_seconds`, `smartcity_dead_letters_total`, service="citizen-requests").
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Mapping

from prometheus_client import Counter, Gauge

from citizen_requests.core.ledger import Processed
from citizen_requests.core.lifecycle import event_type_name, rejection_code_name, sla_kind_name
from smartcity.v1 import requests_pb2 as pb

OPEN = Gauge("smartcity_requests_open", "Open (not yet resolved) requests", ["category", "opd"])
OVERDUE = Gauge("smartcity_requests_overdue",
                "Open requests with a breached SLA whose milestone is still missing", ["category", "opd"])
SLA_BREACHES = Counter("smartcity_requests_sla_breaches_total", "SLA breaches flagged",
                       ["category", "opd", "kind"])
TRANSITIONS = Counter("smartcity_requests_transitions_total",
                      "Events that changed a request (submitted, acknowledged, ..., sla_breached)", ["type"])
REJECTIONS = Counter("smartcity_requests_rejections_total", "Commands rejected, by rejection code", ["code"])
COMMANDS = Counter("smartcity_requests_commands_total",
                   "Commands processed, by outcome (applied, rejected, deduplicated, replayed)", ["outcome"])


def initialise(routes: Mapping[str, str]) -> None:
    """Creates the SLA-breach series of every routed category at zero (category -> OPD), so
    increase() sees the first breach and dashboards show 0 rather than no data."""
    kinds = [sla_kind_name(k).lower() for k in (pb.SLA_KIND_ACKNOWLEDGE, pb.SLA_KIND_RESOLVE)]
    for category, opd in routes.items():
        for kind in kinds:
            SLA_BREACHES.labels(category, opd, kind)


def record_outcomes(processed: Iterable[Processed]) -> None:
    """Counts what a batch of commands or a tick did (a replayed outcome counts only as
    replayed): tallied first, each series moved once per batch."""
    commands: Tally[str] = Tally()
    rejections: Tally[str] = Tally()
    transitions: Tally[str] = Tally()
    breaches: Tally[tuple[str, str, str]] = Tally()
    for one in processed:
        if one.replayed:
            commands["replayed"] += 1
            continue
        request = one.record.request
        for event in one.events:
            if event.type == pb.REQUEST_EVENT_TYPE_COMMAND_REJECTED:
                rejections[rejection_code_name(event.rejection_code).lower()] += 1
                commands["rejected"] += 1
            elif event.type == pb.REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED:
                commands["deduplicated"] += 1
            else:
                transitions[event_type_name(event.type).lower()] += 1
                if event.type == pb.REQUEST_EVENT_TYPE_SLA_BREACHED and request is not None:
                    breaches[(request.category, request.opd_code,
                              sla_kind_name(event.sla_breach.kind).lower())] += 1
        if one.state is not None and any(e.command_id for e in one.events):
            commands["applied"] += 1
    for counter, tally in ((COMMANDS, commands), (REJECTIONS, rejections), (TRANSITIONS, transitions)):
        for label, count in tally.items():
            counter.labels(label).inc(count)
    for labels, count in breaches.items():
        SLA_BREACHES.labels(*labels).inc(count)


def set_open_gauges(open_by_pair: Tally[tuple[str, str]], overdue_by_pair: Tally[tuple[str, str]]) -> None:
    for (category, opd), count in open_by_pair.items():
        OPEN.labels(category, opd).set(count)
    for (category, opd), count in overdue_by_pair.items():
        OVERDUE.labels(category, opd).set(count)


def clear_open_gauges() -> None:
    """This worker no longer computes the statistics: its gauges would only go stale."""
    OPEN.clear()
    OVERDUE.clear()
