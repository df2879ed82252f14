import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from smartcity.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TamperFlag(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TAMPER_FLAG_UNSPECIFIED: _ClassVar[TamperFlag]
    TAMPER_FLAG_SCENE_CHANGE: _ClassVar[TamperFlag]
    TAMPER_FLAG_TOO_DARK: _ClassVar[TamperFlag]
    TAMPER_FLAG_TOO_BLURRY: _ClassVar[TamperFlag]
    TAMPER_FLAG_COVERED: _ClassVar[TamperFlag]
    TAMPER_FLAG_TOO_BRIGHT: _ClassVar[TamperFlag]
    TAMPER_FLAG_FROZEN: _ClassVar[TamperFlag]

class IncidentPhase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INCIDENT_PHASE_UNSPECIFIED: _ClassVar[IncidentPhase]
    INCIDENT_PHASE_OPENED: _ClassVar[IncidentPhase]
    INCIDENT_PHASE_RESOLVED: _ClassVar[IncidentPhase]
TAMPER_FLAG_UNSPECIFIED: TamperFlag
TAMPER_FLAG_SCENE_CHANGE: TamperFlag
TAMPER_FLAG_TOO_DARK: TamperFlag
TAMPER_FLAG_TOO_BLURRY: TamperFlag
TAMPER_FLAG_COVERED: TamperFlag
TAMPER_FLAG_TOO_BRIGHT: TamperFlag
TAMPER_FLAG_FROZEN: TamperFlag
INCIDENT_PHASE_UNSPECIFIED: IncidentPhase
INCIDENT_PHASE_OPENED: IncidentPhase
INCIDENT_PHASE_RESOLVED: IncidentPhase

class CameraHeartbeat(_message.Message):
    __slots__ = ("camera_id", "site_id", "seq", "observed_time", "fps", "configured_fps", "bitrate_kbps", "configured_bitrate_kbps", "dropped_frames", "packet_loss_percent", "storage_free_percent", "recording", "tamper_flags", "location", "name", "reachable", "probe_latency_ms", "source", "frames_decoded", "decode_errors", "mean_luma", "sharpness")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_TIME_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_FPS_FIELD_NUMBER: _ClassVar[int]
    BITRATE_KBPS_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_BITRATE_KBPS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    PACKET_LOSS_PERCENT_FIELD_NUMBER: _ClassVar[int]
    STORAGE_FREE_PERCENT_FIELD_NUMBER: _ClassVar[int]
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    TAMPER_FLAGS_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    PROBE_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DECODED_FIELD_NUMBER: _ClassVar[int]
    DECODE_ERRORS_FIELD_NUMBER: _ClassVar[int]
    MEAN_LUMA_FIELD_NUMBER: _ClassVar[int]
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    site_id: str
    seq: int
    observed_time: _timestamp_pb2.Timestamp
    fps: float
    configured_fps: float
    bitrate_kbps: int
    configured_bitrate_kbps: int
    dropped_frames: int
    packet_loss_percent: float
    storage_free_percent: float
    recording: bool
    tamper_flags: _containers.RepeatedScalarFieldContainer[TamperFlag]
    location: _common_pb2.GeoPoint
    name: str
    reachable: bool
    probe_latency_ms: float
    source: str
    frames_decoded: int
    decode_errors: int
    mean_luma: float
    sharpness: float
    def __init__(self, camera_id: _Optional[str] = ..., site_id: _Optional[str] = ..., seq: _Optional[int] = ..., observed_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fps: _Optional[float] = ..., configured_fps: _Optional[float] = ..., bitrate_kbps: _Optional[int] = ..., configured_bitrate_kbps: _Optional[int] = ..., dropped_frames: _Optional[int] = ..., packet_loss_percent: _Optional[float] = ..., storage_free_percent: _Optional[float] = ..., recording: _Optional[bool] = ..., tamper_flags: _Optional[_Iterable[_Union[TamperFlag, str]]] = ..., location: _Optional[_Union[_common_pb2.GeoPoint, _Mapping]] = ..., name: _Optional[str] = ..., reachable: _Optional[bool] = ..., probe_latency_ms: _Optional[float] = ..., source: _Optional[str] = ..., frames_decoded: _Optional[int] = ..., decode_errors: _Optional[int] = ..., mean_luma: _Optional[float] = ..., sharpness: _Optional[float] = ...) -> None: ...

class CameraStatus(_message.Message):
    __slots__ = ("camera_id", "site_id", "name", "location", "health", "reasons", "health_since", "last_seen", "last_seq", "availability", "fps", "configured_fps", "recording", "updated_time", "open_incident_id")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_SINCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_FPS_FIELD_NUMBER: _ClassVar[int]
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    OPEN_INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    site_id: str
    name: str
    location: _common_pb2.GeoPoint
    health: _common_pb2.HealthState
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.HealthReason]
    health_since: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    last_seq: int
    availability: _common_pb2.Availability
    fps: float
    configured_fps: float
    recording: bool
    updated_time: _timestamp_pb2.Timestamp
    open_incident_id: str
    def __init__(self, camera_id: _Optional[str] = ..., site_id: _Optional[str] = ..., name: _Optional[str] = ..., location: _Optional[_Union[_common_pb2.GeoPoint, _Mapping]] = ..., health: _Optional[_Union[_common_pb2.HealthState, str]] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.HealthReason, _Mapping]]] = ..., health_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seq: _Optional[int] = ..., availability: _Optional[_Union[_common_pb2.Availability, _Mapping]] = ..., fps: _Optional[float] = ..., configured_fps: _Optional[float] = ..., recording: _Optional[bool] = ..., updated_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., open_incident_id: _Optional[str] = ...) -> None: ...

class CameraIncident(_message.Message):
    __slots__ = ("incident_id", "camera_id", "site_id", "phase", "severity", "cause", "reasons", "opened_time", "resolved_time", "duration")
    INCIDENT_ID_FIELD_NUMBER: _ClassVar[int]
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    OPENED_TIME_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    incident_id: str
    camera_id: str
    site_id: str
    phase: IncidentPhase
    severity: _common_pb2.HealthState
    cause: str
    reasons: _containers.RepeatedCompositeFieldContainer[_common_pb2.HealthReason]
    opened_time: _timestamp_pb2.Timestamp
    resolved_time: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    def __init__(self, incident_id: _Optional[str] = ..., camera_id: _Optional[str] = ..., site_id: _Optional[str] = ..., phase: _Optional[_Union[IncidentPhase, str]] = ..., severity: _Optional[_Union[_common_pb2.HealthState, str]] = ..., cause: _Optional[str] = ..., reasons: _Optional[_Iterable[_Union[_common_pb2.HealthReason, _Mapping]]] = ..., opened_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CameraHeartbeatBatch(_message.Message):
    __slots__ = ("site_id", "heartbeats")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEATS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    heartbeats: _containers.RepeatedCompositeFieldContainer[CameraHeartbeat]
    def __init__(self, site_id: _Optional[str] = ..., heartbeats: _Optional[_Iterable[_Union[CameraHeartbeat, _Mapping]]] = ...) -> None: ...
