import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from smartcity.v1 import camera_pb2 as _camera_pb2
from smartcity.v1 import common_pb2 as _common_pb2
from smartcity.v1 import requests_pb2 as _requests_pb2
from smartcity.v1 import wifi_pb2 as _wifi_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeviceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_KIND_UNSPECIFIED: _ClassVar[DeviceKind]
    DEVICE_KIND_ACCESS_POINT: _ClassVar[DeviceKind]
    DEVICE_KIND_CAMERA: _ClassVar[DeviceKind]

class RequestAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_ACTION_UNSPECIFIED: _ClassVar[RequestAction]
    REQUEST_ACTION_ACKNOWLEDGE: _ClassVar[RequestAction]
    REQUEST_ACTION_ASSIGN: _ClassVar[RequestAction]
    REQUEST_ACTION_START: _ClassVar[RequestAction]
    REQUEST_ACTION_RESOLVE: _ClassVar[RequestAction]
    REQUEST_ACTION_CLOSE: _ClassVar[RequestAction]
    REQUEST_ACTION_REJECT: _ClassVar[RequestAction]
    REQUEST_ACTION_REOPEN: _ClassVar[RequestAction]
DEVICE_KIND_UNSPECIFIED: DeviceKind
DEVICE_KIND_ACCESS_POINT: DeviceKind
DEVICE_KIND_CAMERA: DeviceKind
REQUEST_ACTION_UNSPECIFIED: RequestAction
REQUEST_ACTION_ACKNOWLEDGE: RequestAction
REQUEST_ACTION_ASSIGN: RequestAction
REQUEST_ACTION_START: RequestAction
REQUEST_ACTION_RESOLVE: RequestAction
REQUEST_ACTION_CLOSE: RequestAction
REQUEST_ACTION_REJECT: RequestAction
REQUEST_ACTION_REOPEN: RequestAction

class DeviceFilter(_message.Message):
    __slots__ = ("site_id", "health", "near", "radius_meters")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    NEAR_FIELD_NUMBER: _ClassVar[int]
    RADIUS_METERS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    health: _common_pb2.HealthState
    near: _common_pb2.GeoPoint
    radius_meters: float
    def __init__(self, site_id: _Optional[str] = ..., health: _Optional[_Union[_common_pb2.HealthState, str]] = ..., near: _Optional[_Union[_common_pb2.GeoPoint, _Mapping]] = ..., radius_meters: _Optional[float] = ...) -> None: ...

class GetAccessPointRequest(_message.Message):
    __slots__ = ("ap_id",)
    AP_ID_FIELD_NUMBER: _ClassVar[int]
    ap_id: str
    def __init__(self, ap_id: _Optional[str] = ...) -> None: ...

class GetAccessPointResponse(_message.Message):
    __slots__ = ("access_point",)
    ACCESS_POINT_FIELD_NUMBER: _ClassVar[int]
    access_point: _wifi_pb2.AccessPointStatus
    def __init__(self, access_point: _Optional[_Union[_wifi_pb2.AccessPointStatus, _Mapping]] = ...) -> None: ...

class ListAccessPointsRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: DeviceFilter
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[_Union[DeviceFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAccessPointsResponse(_message.Message):
    __slots__ = ("access_points", "next_page_token", "total_size")
    ACCESS_POINTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    access_points: _containers.RepeatedCompositeFieldContainer[_wifi_pb2.AccessPointStatus]
    next_page_token: str
    total_size: int
    def __init__(self, access_points: _Optional[_Iterable[_Union[_wifi_pb2.AccessPointStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class GetCameraRequest(_message.Message):
    __slots__ = ("camera_id",)
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    def __init__(self, camera_id: _Optional[str] = ...) -> None: ...

class GetCameraResponse(_message.Message):
    __slots__ = ("camera",)
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    camera: _camera_pb2.CameraStatus
    def __init__(self, camera: _Optional[_Union[_camera_pb2.CameraStatus, _Mapping]] = ...) -> None: ...

class ListCamerasRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: DeviceFilter
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[_Union[DeviceFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCamerasResponse(_message.Message):
    __slots__ = ("cameras", "next_page_token", "total_size")
    CAMERAS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    cameras: _containers.RepeatedCompositeFieldContainer[_camera_pb2.CameraStatus]
    next_page_token: str
    total_size: int
    def __init__(self, cameras: _Optional[_Iterable[_Union[_camera_pb2.CameraStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class ListIncidentsRequest(_message.Message):
    __slots__ = ("camera_id", "site_id", "open_only", "page_size", "page_token")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    OPEN_ONLY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    site_id: str
    open_only: bool
    page_size: int
    page_token: str
    def __init__(self, camera_id: _Optional[str] = ..., site_id: _Optional[str] = ..., open_only: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListIncidentsResponse(_message.Message):
    __slots__ = ("incidents", "next_page_token", "total_size")
    INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    incidents: _containers.RepeatedCompositeFieldContainer[_camera_pb2.CameraIncident]
    next_page_token: str
    total_size: int
    def __init__(self, incidents: _Optional[_Iterable[_Union[_camera_pb2.CameraIncident, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class WatchDevicesRequest(_message.Message):
    __slots__ = ("send_snapshot", "kind", "site_id")
    SEND_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    send_snapshot: bool
    kind: DeviceKind
    site_id: str
    def __init__(self, send_snapshot: _Optional[bool] = ..., kind: _Optional[_Union[DeviceKind, str]] = ..., site_id: _Optional[str] = ...) -> None: ...

class SnapshotEnd(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchDevicesResponse(_message.Message):
    __slots__ = ("access_point", "camera", "incident", "snapshot_end")
    ACCESS_POINT_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    INCIDENT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_END_FIELD_NUMBER: _ClassVar[int]
    access_point: _wifi_pb2.AccessPointStatus
    camera: _camera_pb2.CameraStatus
    incident: _camera_pb2.CameraIncident
    snapshot_end: SnapshotEnd
    def __init__(self, access_point: _Optional[_Union[_wifi_pb2.AccessPointStatus, _Mapping]] = ..., camera: _Optional[_Union[_camera_pb2.CameraStatus, _Mapping]] = ..., incident: _Optional[_Union[_camera_pb2.CameraIncident, _Mapping]] = ..., snapshot_end: _Optional[_Union[SnapshotEnd, _Mapping]] = ...) -> None: ...

class SiteSummary(_message.Message):
    __slots__ = ("site_id", "name", "location", "access_points_total", "access_points_up", "cameras_total", "cameras_up", "clients_now", "unique_users_today")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINTS_UP_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_UP_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_NOW_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_USERS_TODAY_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    name: str
    location: _common_pb2.GeoPoint
    access_points_total: int
    access_points_up: int
    cameras_total: int
    cameras_up: int
    clients_now: int
    unique_users_today: int
    def __init__(self, site_id: _Optional[str] = ..., name: _Optional[str] = ..., location: _Optional[_Union[_common_pb2.GeoPoint, _Mapping]] = ..., access_points_total: _Optional[int] = ..., access_points_up: _Optional[int] = ..., cameras_total: _Optional[int] = ..., cameras_up: _Optional[int] = ..., clients_now: _Optional[int] = ..., unique_users_today: _Optional[int] = ...) -> None: ...

class CitySnapshot(_message.Message):
    __slots__ = ("as_of", "access_points_total", "access_points_ok", "access_points_problem", "access_points_critical", "people_online", "cameras_total", "cameras_ok", "cameras_problem", "cameras_critical", "open_incidents", "requests_open", "requests_overdue", "requests_by_category", "requests_by_opd", "sites")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINTS_OK_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINTS_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    ACCESS_POINTS_CRITICAL_FIELD_NUMBER: _ClassVar[int]
    PEOPLE_ONLINE_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_OK_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_PROBLEM_FIELD_NUMBER: _ClassVar[int]
    CAMERAS_CRITICAL_FIELD_NUMBER: _ClassVar[int]
    OPEN_INCIDENTS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_OPEN_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_OVERDUE_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_BY_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_BY_OPD_FIELD_NUMBER: _ClassVar[int]
    SITES_FIELD_NUMBER: _ClassVar[int]
    as_of: _timestamp_pb2.Timestamp
    access_points_total: int
    access_points_ok: int
    access_points_problem: int
    access_points_critical: int
    people_online: int
    cameras_total: int
    cameras_ok: int
    cameras_problem: int
    cameras_critical: int
    open_incidents: int
    requests_open: int
    requests_overdue: int
    requests_by_category: _containers.RepeatedCompositeFieldContainer[_requests_pb2.RequestStats]
    requests_by_opd: _containers.RepeatedCompositeFieldContainer[_requests_pb2.RequestStats]
    sites: _containers.RepeatedCompositeFieldContainer[SiteSummary]
    def __init__(self, as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., access_points_total: _Optional[int] = ..., access_points_ok: _Optional[int] = ..., access_points_problem: _Optional[int] = ..., access_points_critical: _Optional[int] = ..., people_online: _Optional[int] = ..., cameras_total: _Optional[int] = ..., cameras_ok: _Optional[int] = ..., cameras_problem: _Optional[int] = ..., cameras_critical: _Optional[int] = ..., open_incidents: _Optional[int] = ..., requests_open: _Optional[int] = ..., requests_overdue: _Optional[int] = ..., requests_by_category: _Optional[_Iterable[_Union[_requests_pb2.RequestStats, _Mapping]]] = ..., requests_by_opd: _Optional[_Iterable[_Union[_requests_pb2.RequestStats, _Mapping]]] = ..., sites: _Optional[_Iterable[_Union[SiteSummary, _Mapping]]] = ...) -> None: ...

class GetCitySnapshotRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCitySnapshotResponse(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: CitySnapshot
    def __init__(self, snapshot: _Optional[_Union[CitySnapshot, _Mapping]] = ...) -> None: ...

class ListSiteStatsRequest(_message.Message):
    __slots__ = ("site_id", "window")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    window: _common_pb2.StatsWindow
    def __init__(self, site_id: _Optional[str] = ..., window: _Optional[_Union[_common_pb2.StatsWindow, str]] = ...) -> None: ...

class ListSiteStatsResponse(_message.Message):
    __slots__ = ("stats",)
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: _containers.RepeatedCompositeFieldContainer[_wifi_pb2.SiteWifiStats]
    def __init__(self, stats: _Optional[_Iterable[_Union[_wifi_pb2.SiteWifiStats, _Mapping]]] = ...) -> None: ...

class WatchCitySnapshotRequest(_message.Message):
    __slots__ = ("interval",)
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    interval: _duration_pb2.Duration
    def __init__(self, interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WatchCitySnapshotResponse(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: CitySnapshot
    def __init__(self, snapshot: _Optional[_Union[CitySnapshot, _Mapping]] = ...) -> None: ...

class SubmitRequestRequest(_message.Message):
    __slots__ = ("idempotency_key", "category", "title", "description", "location", "address", "media_url", "reporter", "priority")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_URL_FIELD_NUMBER: _ClassVar[int]
    REPORTER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    category: str
    title: str
    description: str
    location: _common_pb2.GeoPoint
    address: str
    media_url: str
    reporter: _requests_pb2.Reporter
    priority: _requests_pb2.Priority
    def __init__(self, idempotency_key: _Optional[str] = ..., category: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., location: _Optional[_Union[_common_pb2.GeoPoint, _Mapping]] = ..., address: _Optional[str] = ..., media_url: _Optional[str] = ..., reporter: _Optional[_Union[_requests_pb2.Reporter, _Mapping]] = ..., priority: _Optional[_Union[_requests_pb2.Priority, str]] = ...) -> None: ...

class SubmitRequestResponse(_message.Message):
    __slots__ = ("request", "deduplicated")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    request: _requests_pb2.ServiceRequest
    deduplicated: bool
    def __init__(self, request: _Optional[_Union[_requests_pb2.ServiceRequest, _Mapping]] = ..., deduplicated: _Optional[bool] = ...) -> None: ...

class GetRequestRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class GetRequestResponse(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _requests_pb2.ServiceRequest
    def __init__(self, request: _Optional[_Union[_requests_pb2.ServiceRequest, _Mapping]] = ...) -> None: ...

class ListRequestsRequest(_message.Message):
    __slots__ = ("opd_code", "category", "status", "open_only", "overdue_only", "page_size", "page_token")
    OPD_CODE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OPEN_ONLY_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_ONLY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    opd_code: str
    category: str
    status: _requests_pb2.RequestStatus
    open_only: bool
    overdue_only: bool
    page_size: int
    page_token: str
    def __init__(self, opd_code: _Optional[str] = ..., category: _Optional[str] = ..., status: _Optional[_Union[_requests_pb2.RequestStatus, str]] = ..., open_only: _Optional[bool] = ..., overdue_only: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRequestsResponse(_message.Message):
    __slots__ = ("requests", "next_page_token", "total_size")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[_requests_pb2.ServiceRequest]
    next_page_token: str
    total_size: int
    def __init__(self, requests: _Optional[_Iterable[_Union[_requests_pb2.ServiceRequest, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class TransitionRequestRequest(_message.Message):
    __slots__ = ("request_id", "action", "note", "assignee", "expected_version")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    action: RequestAction
    note: str
    assignee: str
    expected_version: int
    def __init__(self, request_id: _Optional[str] = ..., action: _Optional[_Union[RequestAction, str]] = ..., note: _Optional[str] = ..., assignee: _Optional[str] = ..., expected_version: _Optional[int] = ...) -> None: ...

class TransitionRequestResponse(_message.Message):
    __slots__ = ("request", "event")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    request: _requests_pb2.ServiceRequest
    event: _requests_pb2.RequestEvent
    def __init__(self, request: _Optional[_Union[_requests_pb2.ServiceRequest, _Mapping]] = ..., event: _Optional[_Union[_requests_pb2.RequestEvent, _Mapping]] = ...) -> None: ...

class CommentOnRequestRequest(_message.Message):
    __slots__ = ("request_id", "text")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    text: str
    def __init__(self, request_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class CommentOnRequestResponse(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _requests_pb2.ServiceRequest
    def __init__(self, request: _Optional[_Union[_requests_pb2.ServiceRequest, _Mapping]] = ...) -> None: ...

class ListRequestEventsRequest(_message.Message):
    __slots__ = ("request_id", "page_size", "page_token")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    page_size: int
    page_token: str
    def __init__(self, request_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRequestEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_requests_pb2.RequestEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[_requests_pb2.RequestEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListRequestStatsRequest(_message.Message):
    __slots__ = ("scope",)
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    scope: _requests_pb2.StatsScope
    def __init__(self, scope: _Optional[_Union[_requests_pb2.StatsScope, str]] = ...) -> None: ...

class ListRequestStatsResponse(_message.Message):
    __slots__ = ("stats", "as_of")
    STATS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    stats: _containers.RepeatedCompositeFieldContainer[_requests_pb2.RequestStats]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, stats: _Optional[_Iterable[_Union[_requests_pb2.RequestStats, _Mapping]]] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchRequestsRequest(_message.Message):
    __slots__ = ("send_snapshot", "opd_code", "category")
    SEND_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    OPD_CODE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    send_snapshot: bool
    opd_code: str
    category: str
    def __init__(self, send_snapshot: _Optional[bool] = ..., opd_code: _Optional[str] = ..., category: _Optional[str] = ...) -> None: ...

class WatchRequestsResponse(_message.Message):
    __slots__ = ("request", "snapshot_end")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_END_FIELD_NUMBER: _ClassVar[int]
    request: _requests_pb2.ServiceRequest
    snapshot_end: SnapshotEnd
    def __init__(self, request: _Optional[_Union[_requests_pb2.ServiceRequest, _Mapping]] = ..., snapshot_end: _Optional[_Union[SnapshotEnd, _Mapping]] = ...) -> None: ...

class EraseContactDataRequest(_message.Message):
    __slots__ = ("request_id", "reporter", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REPORTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    reporter: _requests_pb2.Reporter
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., reporter: _Optional[_Union[_requests_pb2.Reporter, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class EraseContactDataResponse(_message.Message):
    __slots__ = ("request_ids", "erased", "erased_time")
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    ERASED_FIELD_NUMBER: _ClassVar[int]
    ERASED_TIME_FIELD_NUMBER: _ClassVar[int]
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    erased: bool
    erased_time: _timestamp_pb2.Timestamp
    def __init__(self, request_ids: _Optional[_Iterable[str]] = ..., erased: _Optional[bool] = ..., erased_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
