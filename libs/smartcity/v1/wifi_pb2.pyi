import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from smartcity.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_EVENT_KIND_UNSPECIFIED: _ClassVar[SessionEventKind]
    SESSION_EVENT_KIND_CONNECT: _ClassVar[SessionEventKind]
    SESSION_EVENT_KIND_DISCONNECT: _ClassVar[SessionEventKind]
    SESSION_EVENT_KIND_INTERIM_UPDATE: _ClassVar[SessionEventKind]
SESSION_EVENT_KIND_UNSPECIFIED: SessionEventKind
SESSION_EVENT_KIND_CONNECT: SessionEventKind
SESSION_EVENT_KIND_DISCONNECT: SessionEventKind
SESSION_EVENT_KIND_INTERIM_UPDATE: SessionEventKind

class RadioStats(_message.Message):
    __slots__ = ("band", "channel", "noise_dbm", "channel_utilization_ratio", "clients")
    BAND_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    NOISE_DBM_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_UTILIZATION_RATIO_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    band: str
    channel: int
    noise_dbm: int
    channel_utilization_ratio: float
    clients: int
    def __init__(self, band: _Optional[str] = ..., channel: _Optional[int] = ..., noise_dbm: _Optional[int] = ..., channel_utilization_ratio: _Optional[float] = ..., clients: _Optional[int] = ...) -> None: ...

class ApTelemetry(_message.Message):
    __slots__ = ("ap_id", "site_id", "seq", "observed_time", "uptime_seconds", "cpu_percent", "memory_percent", "clients", "rx_bytes", "tx_bytes", "radios", "firmware", "location", "name")
    AP_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_TIME_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    RX_BYTES_FIELD_NUMBER: _ClassVar[int]
    TX_BYTES_FIELD_NUMBER: _ClassVar[int]
    RADIOS_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ap_id: str
    site_id: str
    seq: int
    observed_time: _timestamp_pb2.Timestamp
    uptime_seconds: int
    cpu_percent: float
    memory_percent: float
    clients: int
    rx_bytes: int
    tx_bytes: int
    radios: _containers.RepeatedCompositeFieldContainer[RadioStats]
    firmware: str
    location: _common_pb2.GeoPoint
    name: str
    def __init__(self, ap_id: _Optional[str] = ..., site_id: _Optional[str] = ..., seq: _Optional[int] = ..., observed_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uptime_seconds: _Optional[int] = ..., cpu_percent: _Optional[float] = ..., memory_percent: _Optional[float] = ..., clients: _Optional[int] = ..., rx_bytes: _Optional[int] = ..., tx_bytes: _Optional[int] = ..., radios: _Optional[_Iterable[_Union[RadioStats, _Mapping]]] = ..., firmware: _Optional[str] = ..., location: _Optional[_Union[_common_pb2.GeoPoint, _Mapping]] = ..., name: _Optional[str] = ...) -> None: ...

class ClientSession(_message.Message):
    __slots__ = ("ap_id", "site_id", "kind", "client_hash", "event_time", "rx_bytes", "tx_bytes", "session_id", "event_id", "session_time_seconds")
    AP_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CLIENT_HASH_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    RX_BYTES_FIELD_NUMBER: _ClassVar[int]
    TX_BYTES_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_TIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ap_id: str
    site_id: str
    kind: SessionEventKind
    client_hash: str
    event_time: _timestamp_pb2.Timestamp
    rx_bytes: int
    tx_bytes: int
    session_id: str
    event_id: str
    session_time_seconds: int
    def __init__(self, ap_id: _Optional[str] = ..., site_id: _Optional[str] = ..., kind: _Optional[_Union[SessionEventKind, str]] = ..., client_hash: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rx_bytes: _Optional[int] = ..., tx_bytes: _Optional[int] = ..., session_id: _Optional[str] = ..., event_id: _Optional[str] = ..., session_time_seconds: _Optional[int] = ...) -> None: ...

class AccessPointStatus(_message.Message):
    __slots__ = ("ap_id", "site_id", "name", "location", "health", "reasons", "health_since", "clients_now", "rx_bps", "tx_bps", "last_seen", "last_seq", "availability", "updated_time", "uptime_seconds")
    AP_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_SINCE_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_NOW_FIELD_NUMBER: _ClassVar[int]
    RX_BPS_FIELD_NUMBER: _ClassVar[int]
    TX_BPS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ap_id: str
    site_id: str
    name: str
    location: _common_pb2.GeoPoint
    health: _common_pb2.HealthState
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.HealthReason]
    health_since: _timestamp_pb2.Timestamp
    clients_now: int
    rx_bps: float
    tx_bps: float
    last_seen: _timestamp_pb2.Timestamp
    last_seq: int
    availability: _common_pb2.Availability
    updated_time: _timestamp_pb2.Timestamp
    uptime_seconds: int
    def __init__(self, ap_id: _Optional[str] = ..., site_id: _Optional[str] = ..., name: _Optional[str] = ..., location: _Optional[_Union[_common_pb2.GeoPoint, _Mapping]] = ..., health: _Optional[_Union[_common_pb2.HealthState, str]] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.HealthReason, _Mapping]]] = ..., health_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., clients_now: _Optional[int] = ..., rx_bps: _Optional[float] = ..., tx_bps: _Optional[float] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seq: _Optional[int] = ..., availability: _Optional[_Union[_common_pb2.Availability, _Mapping]] = ..., updated_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uptime_seconds: _Optional[int] = ...) -> None: ...

class SiteWifiStats(_message.Message):
    __slots__ = ("site_id", "window", "window_start", "window_end", "unique_users", "peak_clients", "clients_now", "rx_bytes", "tx_bytes", "availability_ratio", "access_points_total", "access_points_up", "sessions_started", "updated_time")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_USERS_FIELD_NUMBER: _ClassVar[int]
    PEAK_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_NOW_FIELD_NUMBER: _ClassVar[int]
    RX_BYTES_FIELD_NUMBER: _ClassVar[int]
    TX_BYTES_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_RATIO_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINTS_UP_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_STARTED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    window: _common_pb2.StatsWindow
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    unique_users: int
    peak_clients: int
    clients_now: int
    rx_bytes: int
    tx_bytes: int
    availability_ratio: float
    access_points_total: int
    access_points_up: int
    sessions_started: int
    updated_time: _timestamp_pb2.Timestamp
    def __init__(self, site_id: _Optional[str] = ..., window: _Optional[_Union[_common_pb2.StatsWindow, str]] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., unique_users: _Optional[int] = ..., peak_clients: _Optional[int] = ..., clients_now: _Optional[int] = ..., rx_bytes: _Optional[int] = ..., tx_bytes: _Optional[int] = ..., availability_ratio: _Optional[float] = ..., access_points_total: _Optional[int] = ..., access_points_up: _Optional[int] = ..., sessions_started: _Optional[int] = ..., updated_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ApTelemetryBatch(_message.Message):
    __slots__ = ("site_id", "readings")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    READINGS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    readings: _containers.RepeatedCompositeFieldContainer[ApTelemetry]
    def __init__(self, site_id: _Optional[str] = ..., readings: _Optional[_Iterable[_Union[ApTelemetry, _Mapping]]] = ...) -> None: ...

class ClientSessionBatch(_message.Message):
    __slots__ = ("site_id", "sessions")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    sessions: _containers.RepeatedCompositeFieldContainer[ClientSession]
    def __init__(self, site_id: _Optional[str] = ..., sessions: _Optional[_Iterable[_Union[ClientSession, _Mapping]]] = ...) -> None: ...
