import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HealthState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_STATE_UNSPECIFIED: _ClassVar[HealthState]
    HEALTH_STATE_OK: _ClassVar[HealthState]
    HEALTH_STATE_PROBLEM: _ClassVar[HealthState]
    HEALTH_STATE_CRITICAL: _ClassVar[HealthState]

class StatsWindow(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATS_WINDOW_UNSPECIFIED: _ClassVar[StatsWindow]
    STATS_WINDOW_MINUTE: _ClassVar[StatsWindow]
    STATS_WINDOW_HOUR: _ClassVar[StatsWindow]
    STATS_WINDOW_DAY: _ClassVar[StatsWindow]
HEALTH_STATE_UNSPECIFIED: HealthState
HEALTH_STATE_OK: HealthState
HEALTH_STATE_PROBLEM: HealthState
HEALTH_STATE_CRITICAL: HealthState
STATS_WINDOW_UNSPECIFIED: StatsWindow
STATS_WINDOW_MINUTE: StatsWindow
STATS_WINDOW_HOUR: StatsWindow
STATS_WINDOW_DAY: StatsWindow

class GeoPoint(_message.Message):
    __slots__ = ("latitude", "longitude")
    LATITUDE_FIELD_NUMBER: _ClassVar[int]
    LONGITUDE_FIELD_NUMBER: _ClassVar[int]
    latitude: float
    longitude: float
    def __init__(self, latitude: _Optional[float] = ..., longitude: _Optional[float] = ...) -> None: ...

class HealthReason(_message.Message):
    __slots__ = ("check", "severity", "detail", "since")
    CHECK_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    check: str
    severity: HealthState
    detail: str
    since: _timestamp_pb2.Timestamp
    def __init__(self, check: _Optional[str] = ..., severity: _Optional[_Union[HealthState, str]] = ..., detail: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Availability(_message.Message):
    __slots__ = ("last_hour_ratio", "last_day_ratio", "last_week_ratio")
    LAST_HOUR_RATIO_FIELD_NUMBER: _ClassVar[int]
    LAST_DAY_RATIO_FIELD_NUMBER: _ClassVar[int]
    LAST_WEEK_RATIO_FIELD_NUMBER: _ClassVar[int]
    last_hour_ratio: float
    last_day_ratio: float
    last_week_ratio: float
    def __init__(self, last_hour_ratio: _Optional[float] = ..., last_day_ratio: _Optional[float] = ..., last_week_ratio: _Optional[float] = ...) -> None: ...
