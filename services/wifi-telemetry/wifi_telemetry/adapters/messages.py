"""The protobuf side: validating what comes in, converting to the domain and back."""

from __future__ import annotations

import math

from smartcity.codec import ProtoCodec, from_timestamp, to_timestamp
from smartcity.v1 import common_pb2, wifi_pb2
from wifi_telemetry.core.domain import Sample
from wifi_telemetry.core.processor import CONNECT, DISCONNECT, SessionEvent
from wifi_telemetry.core.published import ApView, SiteStats

# Event times before this are a device with an unset clock, not data (2020-01-01T00:00:00Z).
EARLIEST_EVENT_TIME = 1_577_836_800

_WINDOWS = {"minute": common_pb2.STATS_WINDOW_MINUTE, "hour": common_pb2.STATS_WINDOW_HOUR,
            "day": common_pb2.STATS_WINDOW_DAY}
# An interim update (RADIUS accounting) says the session goes on: counted like its connect, which
# the distinct user and session sets make idempotent.
_KINDS = {wifi_pb2.SESSION_EVENT_KIND_CONNECT: CONNECT, wifi_pb2.SESSION_EVENT_KIND_DISCONNECT: DISCONNECT,
          wifi_pb2.SESSION_EVENT_KIND_INTERIM_UPDATE: CONNECT}


def _require_text(**fields: str) -> None:
    missing = [name for name, value in fields.items() if not value.strip()]
    if missing:
        raise ValueError("missing required field(s): " + ", ".join(missing))


def _require_time(name: str, seconds: float) -> None:
    if seconds < EARLIEST_EVENT_TIME:
        raise ValueError(f"{name} missing or before 2020 ({seconds:.0f})")


def _require_percent(name: str, value: float) -> None:
    if math.isnan(value) or not 0.0 <= value <= 100.0:
        raise ValueError(f"{name} {value} is not a percentage")


def telemetry_is_valid(message: wifi_pb2.ApTelemetry) -> bool:
    """A good reading in one expression (NaN fails the comparisons): True only when
    `validate_telemetry` finds nothing (it may say False to a reading at the edge of a limit)."""
    return bool(message.observed_time.seconds > EARLIEST_EVENT_TIME
                and 0.0 <= message.cpu_percent <= 100.0 and 0.0 <= message.memory_percent <= 100.0
                and message.ap_id.strip() and message.site_id.strip())


def validate_telemetry(message: wifi_pb2.ApTelemetry) -> None:
    # Every reading of a batch passes here: a good one at once, the reason worked out (field
    # by field) only for a bad one.
    if not telemetry_is_valid(message):
        telemetry_problem(message)


def telemetry_problem(message: wifi_pb2.ApTelemetry) -> None:
    """The general check of a reading, field by field: a ValueError naming what is wrong."""
    _require_text(ap_id=message.ap_id, site_id=message.site_id)
    _require_time("observed_time", from_timestamp(message.observed_time))
    _require_percent("cpu_percent", message.cpu_percent)
    _require_percent("memory_percent", message.memory_percent)


def session_is_valid(message: wifi_pb2.ClientSession) -> bool:
    """Like `telemetry_is_valid`, for `validate_session`."""
    return bool(message.event_time.seconds > EARLIEST_EVENT_TIME and message.kind in _KINDS
                and message.ap_id.strip() and message.site_id.strip() and message.session_id.strip())


def validate_session(message: wifi_pb2.ClientSession) -> None:
    """Structure only; the client_hash is checked apart, so a raw MAC can be redacted first."""
    if not session_is_valid(message):  # a good one at once, as for telemetry
        session_problem(message)


def session_problem(message: wifi_pb2.ClientSession) -> None:
    """Like `telemetry_problem`, for `validate_session`."""
    _require_text(ap_id=message.ap_id, site_id=message.site_id, session_id=message.session_id)
    if message.kind not in _KINDS:
        raise ValueError(f"kind {message.kind} is not CONNECT, INTERIM_UPDATE or DISCONNECT")
    _require_time("event_time", from_timestamp(message.event_time))


TELEMETRY_CODEC = ProtoCodec(wifi_pb2.ApTelemetry, validate_telemetry)
SESSION_CODEC = ProtoCodec(wifi_pb2.ClientSession, validate_session)


def redacted_session(message: wifi_pb2.ClientSession) -> wifi_pb2.ClientSession:
    """The session with its client id blanked: what may go to the DLQ when that id is bad."""
    copy = wifi_pb2.ClientSession()
    copy.CopyFrom(message)
    copy.client_hash = "<redacted>"
    return copy


def sample_from_proto(message: wifi_pb2.ApTelemetry) -> Sample:
    location = message.location
    return Sample(
        ap_id=message.ap_id, site_id=message.site_id, seq=message.seq,
        t=from_timestamp(message.observed_time), uptime_s=message.uptime_seconds,
        cpu=message.cpu_percent, mem=message.memory_percent, clients=message.clients,
        rx=message.rx_bytes, tx=message.tx_bytes, name=message.name,
        lat=location.latitude, lon=location.longitude, firmware=message.firmware,
    )


def checked_sample(message: wifi_pb2.ApTelemetry) -> Sample:
    """The reading as a `Sample`, validated as `validate_telemetry` does (its ValueError): an
    edge batch's reading has its fields read once, for the check and the sample both."""
    sample = sample_from_proto(message)
    if not (sample.t > EARLIEST_EVENT_TIME and 0.0 <= sample.cpu <= 100.0 and 0.0 <= sample.mem <= 100.0
            and sample.ap_id.strip() and sample.site_id.strip()):
        validate_telemetry(message)  # the reason, or none (a reading at the edge of a limit)
    return sample


def session_from_proto(message: wifi_pb2.ClientSession) -> SessionEvent:
    return SessionEvent(
        ap_id=message.ap_id, site_id=message.site_id, kind=_KINDS[message.kind],
        client_hash=message.client_hash, t=from_timestamp(message.event_time),
        session_id=message.session_id, rx=message.rx_bytes, tx=message.tx_bytes,
    )


def status_proto(view: ApView, now: float) -> wifi_pb2.AccessPointStatus:
    state = view.state
    hour, day, week = view.availability_ratios()
    status = wifi_pb2.AccessPointStatus(
        ap_id=state.ap_id, site_id=state.site_id, name=state.name,
        location=common_pb2.GeoPoint(latitude=state.lat, longitude=state.lon),
        health=common_pb2.HealthState.Name(int(view.health)),
        health_since=to_timestamp(view.health_since),
        clients_now=view.clients, rx_bps=view.rx_bps, tx_bps=view.tx_bps,
        last_seq=state.last_seq or 0, uptime_seconds=state.uptime_s,
        availability=common_pb2.Availability(last_hour_ratio=hour, last_day_ratio=day, last_week_ratio=week),
        updated_time=to_timestamp(now),
    )
    if state.last_seen is not None:
        status.last_seen.CopyFrom(to_timestamp(state.last_seen))
    for reason in view.reasons:
        status.reasons.add(check=reason.check, severity=int(reason.severity), detail=reason.detail,
                           since=to_timestamp(reason.since))
    return status


def site_stats_proto(stats: SiteStats, now: float) -> wifi_pb2.SiteWifiStats:
    return wifi_pb2.SiteWifiStats(
        site_id=stats.site_id, window=_WINDOWS[stats.window], window_start=to_timestamp(stats.start),
        window_end=to_timestamp(stats.end), unique_users=stats.unique_users,
        peak_clients=stats.peak_clients, clients_now=stats.clients_now, rx_bytes=stats.rx_bytes,
        tx_bytes=stats.tx_bytes, availability_ratio=stats.availability_ratio,
        access_points_total=stats.access_points_total, access_points_up=stats.access_points_up,
        sessions_started=stats.sessions_started, updated_time=to_timestamp(now),
    )
