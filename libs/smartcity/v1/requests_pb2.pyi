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

class RequestStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_STATUS_UNSPECIFIED: _ClassVar[RequestStatus]
    REQUEST_STATUS_SUBMITTED: _ClassVar[RequestStatus]
    REQUEST_STATUS_ACKNOWLEDGED: _ClassVar[RequestStatus]
    REQUEST_STATUS_ASSIGNED: _ClassVar[RequestStatus]
    REQUEST_STATUS_IN_PROGRESS: _ClassVar[RequestStatus]
    REQUEST_STATUS_RESOLVED: _ClassVar[RequestStatus]
    REQUEST_STATUS_CLOSED: _ClassVar[RequestStatus]
    REQUEST_STATUS_REJECTED: _ClassVar[RequestStatus]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_LOW: _ClassVar[Priority]
    PRIORITY_NORMAL: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]
    PRIORITY_EMERGENCY: _ClassVar[Priority]

class ActorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTOR_KIND_UNSPECIFIED: _ClassVar[ActorKind]
    ACTOR_KIND_CITIZEN: _ClassVar[ActorKind]
    ACTOR_KIND_OPD_STAFF: _ClassVar[ActorKind]
    ACTOR_KIND_COMMAND_CENTER: _ClassVar[ActorKind]
    ACTOR_KIND_SYSTEM: _ClassVar[ActorKind]

class ContactDataState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTACT_DATA_STATE_UNSPECIFIED: _ClassVar[ContactDataState]
    CONTACT_DATA_STATE_NONE: _ClassVar[ContactDataState]
    CONTACT_DATA_STATE_AVAILABLE: _ClassVar[ContactDataState]
    CONTACT_DATA_STATE_ERASED: _ClassVar[ContactDataState]

class AuditAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_ACTION_UNSPECIFIED: _ClassVar[AuditAction]
    AUDIT_ACTION_CONTACT_READ: _ClassVar[AuditAction]
    AUDIT_ACTION_CONTACT_ERASED: _ClassVar[AuditAction]
    AUDIT_ACTION_CONTACT_EXPIRED: _ClassVar[AuditAction]
    AUDIT_ACTION_CONTACT_DISCARDED: _ClassVar[AuditAction]

class RequestEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_EVENT_TYPE_UNSPECIFIED: _ClassVar[RequestEventType]
    REQUEST_EVENT_TYPE_SUBMITTED: _ClassVar[RequestEventType]
    REQUEST_EVENT_TYPE_ACKNOWLEDGED: _ClassVar[RequestEventType]
    REQUEST_EVENT_TYPE_ASSIGNED: _ClassVar[RequestEventType]
    REQUEST_EVENT_TYPE_STARTED: _ClassVar[RequestEventType]
    REQUEST_EVENT_TYPE_RESOLVED: _ClassVar[RequestEventType]
    REQUEST_EVENT_TYPE_CLOSED: _ClassVar[RequestEventType]
    REQUEST_EVENT_TYPE_REJECTED: _ClassVar[RequestEventType]
    REQUEST_EVENT_TYPE_REOPENED: _ClassVar[RequestEventType]
    REQUEST_EVENT_TYPE_COMMENTED: _ClassVar[RequestEventType]
    REQUEST_EVENT_TYPE_SLA_BREACHED: _ClassVar[RequestEventType]
    REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED: _ClassVar[RequestEventType]
    REQUEST_EVENT_TYPE_COMMAND_REJECTED: _ClassVar[RequestEventType]

class RejectionCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECTION_CODE_UNSPECIFIED: _ClassVar[RejectionCode]
    REJECTION_CODE_INVALID_TRANSITION: _ClassVar[RejectionCode]
    REJECTION_CODE_NOT_FOUND: _ClassVar[RejectionCode]
    REJECTION_CODE_VERSION_CONFLICT: _ClassVar[RejectionCode]
    REJECTION_CODE_INVALID_COMMAND: _ClassVar[RejectionCode]
    REJECTION_CODE_ALREADY_EXISTS: _ClassVar[RejectionCode]

class SlaKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SLA_KIND_UNSPECIFIED: _ClassVar[SlaKind]
    SLA_KIND_ACKNOWLEDGE: _ClassVar[SlaKind]
    SLA_KIND_RESOLVE: _ClassVar[SlaKind]

class StatsScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATS_SCOPE_UNSPECIFIED: _ClassVar[StatsScope]
    STATS_SCOPE_CATEGORY: _ClassVar[StatsScope]
    STATS_SCOPE_OPD: _ClassVar[StatsScope]
REQUEST_STATUS_UNSPECIFIED: RequestStatus
REQUEST_STATUS_SUBMITTED: RequestStatus
REQUEST_STATUS_ACKNOWLEDGED: RequestStatus
REQUEST_STATUS_ASSIGNED: RequestStatus
REQUEST_STATUS_IN_PROGRESS: RequestStatus
REQUEST_STATUS_RESOLVED: RequestStatus
REQUEST_STATUS_CLOSED: RequestStatus
REQUEST_STATUS_REJECTED: RequestStatus
PRIORITY_UNSPECIFIED: Priority
PRIORITY_LOW: Priority
PRIORITY_NORMAL: Priority
PRIORITY_HIGH: Priority
PRIORITY_EMERGENCY: Priority
ACTOR_KIND_UNSPECIFIED: ActorKind
ACTOR_KIND_CITIZEN: ActorKind
ACTOR_KIND_OPD_STAFF: ActorKind
ACTOR_KIND_COMMAND_CENTER: ActorKind
ACTOR_KIND_SYSTEM: ActorKind
CONTACT_DATA_STATE_UNSPECIFIED: ContactDataState
CONTACT_DATA_STATE_NONE: ContactDataState
CONTACT_DATA_STATE_AVAILABLE: ContactDataState
CONTACT_DATA_STATE_ERASED: ContactDataState
AUDIT_ACTION_UNSPECIFIED: AuditAction
AUDIT_ACTION_CONTACT_READ: AuditAction
AUDIT_ACTION_CONTACT_ERASED: AuditAction
AUDIT_ACTION_CONTACT_EXPIRED: AuditAction
AUDIT_ACTION_CONTACT_DISCARDED: AuditAction
REQUEST_EVENT_TYPE_UNSPECIFIED: RequestEventType
REQUEST_EVENT_TYPE_SUBMITTED: RequestEventType
REQUEST_EVENT_TYPE_ACKNOWLEDGED: RequestEventType
REQUEST_EVENT_TYPE_ASSIGNED: RequestEventType
REQUEST_EVENT_TYPE_STARTED: RequestEventType
REQUEST_EVENT_TYPE_RESOLVED: RequestEventType
REQUEST_EVENT_TYPE_CLOSED: RequestEventType
REQUEST_EVENT_TYPE_REJECTED: RequestEventType
REQUEST_EVENT_TYPE_REOPENED: RequestEventType
REQUEST_EVENT_TYPE_COMMENTED: RequestEventType
REQUEST_EVENT_TYPE_SLA_BREACHED: RequestEventType
REQUEST_EVENT_TYPE_SUBMIT_DEDUPLICATED: RequestEventType
REQUEST_EVENT_TYPE_COMMAND_REJECTED: RequestEventType
REJECTION_CODE_UNSPECIFIED: RejectionCode
REJECTION_CODE_INVALID_TRANSITION: RejectionCode
REJECTION_CODE_NOT_FOUND: RejectionCode
REJECTION_CODE_VERSION_CONFLICT: RejectionCode
REJECTION_CODE_INVALID_COMMAND: RejectionCode
REJECTION_CODE_ALREADY_EXISTS: RejectionCode
SLA_KIND_UNSPECIFIED: SlaKind
SLA_KIND_ACKNOWLEDGE: SlaKind
SLA_KIND_RESOLVE: SlaKind
STATS_SCOPE_UNSPECIFIED: StatsScope
STATS_SCOPE_CATEGORY: StatsScope
STATS_SCOPE_OPD: StatsScope

class Actor(_message.Message):
    __slots__ = ("kind", "id", "opd_code")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    OPD_CODE_FIELD_NUMBER: _ClassVar[int]
    kind: ActorKind
    id: str
    opd_code: str
    def __init__(self, kind: _Optional[_Union[ActorKind, str]] = ..., id: _Optional[str] = ..., opd_code: _Optional[str] = ...) -> None: ...

class Reporter(_message.Message):
    __slots__ = ("name", "phone", "email")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    phone: str
    email: str
    def __init__(self, name: _Optional[str] = ..., phone: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class EncryptedContact(_message.Message):
    __slots__ = ("subject_id", "data_key_id", "algorithm", "nonce", "ciphertext")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    data_key_id: str
    algorithm: str
    nonce: bytes
    ciphertext: bytes
    def __init__(self, subject_id: _Optional[str] = ..., data_key_id: _Optional[str] = ..., algorithm: _Optional[str] = ..., nonce: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ...) -> None: ...

class DataKeyRecord(_message.Message):
    __slots__ = ("subject_id", "data_key_id", "kek_id", "algorithm", "nonce", "wrapped_key", "created_time")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    KEK_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    data_key_id: str
    kek_id: str
    algorithm: str
    nonce: bytes
    wrapped_key: bytes
    created_time: _timestamp_pb2.Timestamp
    def __init__(self, subject_id: _Optional[str] = ..., data_key_id: _Optional[str] = ..., kek_id: _Optional[str] = ..., algorithm: _Optional[str] = ..., nonce: _Optional[bytes] = ..., wrapped_key: _Optional[bytes] = ..., created_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("audit_id", "action", "time", "client_id", "opd_code", "request_id", "method", "request_ids", "reason", "correlation_id")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    OPD_CODE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    action: AuditAction
    time: _timestamp_pb2.Timestamp
    client_id: str
    opd_code: str
    request_id: str
    method: str
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    correlation_id: str
    def __init__(self, audit_id: _Optional[str] = ..., action: _Optional[_Union[AuditAction, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., client_id: _Optional[str] = ..., opd_code: _Optional[str] = ..., request_id: _Optional[str] = ..., method: _Optional[str] = ..., request_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., correlation_id: _Optional[str] = ...) -> None: ...

class SubmitAction(_message.Message):
    __slots__ = ("idempotency_key", "category", "title", "description", "location", "address", "media_url", "reporter", "priority", "requested_time", "encrypted_reporter")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_URL_FIELD_NUMBER: _ClassVar[int]
    REPORTER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_TIME_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_REPORTER_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    category: str
    title: str
    description: str
    location: _common_pb2.GeoPoint
    address: str
    media_url: str
    reporter: Reporter
    priority: Priority
    requested_time: _timestamp_pb2.Timestamp
    encrypted_reporter: EncryptedContact
    def __init__(self, idempotency_key: _Optional[str] = ..., category: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., location: _Optional[_Union[_common_pb2.GeoPoint, _Mapping]] = ..., address: _Optional[str] = ..., media_url: _Optional[str] = ..., reporter: _Optional[_Union[Reporter, _Mapping]] = ..., priority: _Optional[_Union[Priority, str]] = ..., requested_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., encrypted_reporter: _Optional[_Union[EncryptedContact, _Mapping]] = ...) -> None: ...

class AcknowledgeAction(_message.Message):
    __slots__ = ("note",)
    NOTE_FIELD_NUMBER: _ClassVar[int]
    note: str
    def __init__(self, note: _Optional[str] = ...) -> None: ...

class AssignAction(_message.Message):
    __slots__ = ("assignee", "note")
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    assignee: str
    note: str
    def __init__(self, assignee: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class StartAction(_message.Message):
    __slots__ = ("note",)
    NOTE_FIELD_NUMBER: _ClassVar[int]
    note: str
    def __init__(self, note: _Optional[str] = ...) -> None: ...

class ResolveAction(_message.Message):
    __slots__ = ("note",)
    NOTE_FIELD_NUMBER: _ClassVar[int]
    note: str
    def __init__(self, note: _Optional[str] = ...) -> None: ...

class CloseAction(_message.Message):
    __slots__ = ("note",)
    NOTE_FIELD_NUMBER: _ClassVar[int]
    note: str
    def __init__(self, note: _Optional[str] = ...) -> None: ...

class RejectAction(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class ReopenAction(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class CommentAction(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class RequestCommand(_message.Message):
    __slots__ = ("command_id", "request_id", "correlation_id", "actor", "issued_time", "expected_version", "client_id", "submit", "acknowledge", "assign", "start", "resolve", "close", "reject", "reopen", "comment")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ISSUED_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBMIT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGE_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    REOPEN_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    request_id: str
    correlation_id: str
    actor: Actor
    issued_time: _timestamp_pb2.Timestamp
    expected_version: int
    client_id: str
    submit: SubmitAction
    acknowledge: AcknowledgeAction
    assign: AssignAction
    start: StartAction
    resolve: ResolveAction
    close: CloseAction
    reject: RejectAction
    reopen: ReopenAction
    comment: CommentAction
    def __init__(self, command_id: _Optional[str] = ..., request_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., actor: _Optional[_Union[Actor, _Mapping]] = ..., issued_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expected_version: _Optional[int] = ..., client_id: _Optional[str] = ..., submit: _Optional[_Union[SubmitAction, _Mapping]] = ..., acknowledge: _Optional[_Union[AcknowledgeAction, _Mapping]] = ..., assign: _Optional[_Union[AssignAction, _Mapping]] = ..., start: _Optional[_Union[StartAction, _Mapping]] = ..., resolve: _Optional[_Union[ResolveAction, _Mapping]] = ..., close: _Optional[_Union[CloseAction, _Mapping]] = ..., reject: _Optional[_Union[RejectAction, _Mapping]] = ..., reopen: _Optional[_Union[ReopenAction, _Mapping]] = ..., comment: _Optional[_Union[CommentAction, _Mapping]] = ...) -> None: ...

class SlaBreach(_message.Message):
    __slots__ = ("kind", "due_time")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    kind: SlaKind
    due_time: _timestamp_pb2.Timestamp
    def __init__(self, kind: _Optional[_Union[SlaKind, str]] = ..., due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RequestEvent(_message.Message):
    __slots__ = ("event_id", "request_id", "correlation_id", "command_id", "type", "version", "actor", "note", "event_time", "status_before", "status_after", "rejection_code", "rejection_reason", "sla_breach", "request")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_BEFORE_FIELD_NUMBER: _ClassVar[int]
    STATUS_AFTER_FIELD_NUMBER: _ClassVar[int]
    REJECTION_CODE_FIELD_NUMBER: _ClassVar[int]
    REJECTION_REASON_FIELD_NUMBER: _ClassVar[int]
    SLA_BREACH_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    request_id: str
    correlation_id: str
    command_id: str
    type: RequestEventType
    version: int
    actor: Actor
    note: str
    event_time: _timestamp_pb2.Timestamp
    status_before: RequestStatus
    status_after: RequestStatus
    rejection_code: RejectionCode
    rejection_reason: str
    sla_breach: SlaBreach
    request: ServiceRequest
    def __init__(self, event_id: _Optional[str] = ..., request_id: _Optional[str] = ..., correlation_id: _Optional[str] = ..., command_id: _Optional[str] = ..., type: _Optional[_Union[RequestEventType, str]] = ..., version: _Optional[int] = ..., actor: _Optional[_Union[Actor, _Mapping]] = ..., note: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_before: _Optional[_Union[RequestStatus, str]] = ..., status_after: _Optional[_Union[RequestStatus, str]] = ..., rejection_code: _Optional[_Union[RejectionCode, str]] = ..., rejection_reason: _Optional[str] = ..., sla_breach: _Optional[_Union[SlaBreach, _Mapping]] = ..., request: _Optional[_Union[ServiceRequest, _Mapping]] = ...) -> None: ...

class SlaStatus(_message.Message):
    __slots__ = ("acknowledge_due", "resolve_due", "acknowledge_breached", "resolve_breached")
    ACKNOWLEDGE_DUE_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_DUE_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGE_BREACHED_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_BREACHED_FIELD_NUMBER: _ClassVar[int]
    acknowledge_due: _timestamp_pb2.Timestamp
    resolve_due: _timestamp_pb2.Timestamp
    acknowledge_breached: bool
    resolve_breached: bool
    def __init__(self, acknowledge_due: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolve_due: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledge_breached: _Optional[bool] = ..., resolve_breached: _Optional[bool] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("version", "type", "status", "actor", "note", "time")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    version: int
    type: RequestEventType
    status: RequestStatus
    actor: Actor
    note: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., type: _Optional[_Union[RequestEventType, str]] = ..., status: _Optional[_Union[RequestStatus, str]] = ..., actor: _Optional[_Union[Actor, _Mapping]] = ..., note: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ServiceRequest(_message.Message):
    __slots__ = ("request_id", "category", "service_code", "opd_code", "priority", "status", "version", "title", "description", "location", "address", "media_url", "reporter", "assignee", "idempotency_key", "submitted_by_client", "requested_time", "updated_time", "acknowledged_time", "resolved_time", "closed_time", "sla", "history", "comment_count", "possible_duplicate_of", "encrypted_reporter", "contact_data")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SERVICE_CODE_FIELD_NUMBER: _ClassVar[int]
    OPD_CODE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_URL_FIELD_NUMBER: _ClassVar[int]
    REPORTER_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_BY_CLIENT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_TIME_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSED_TIME_FIELD_NUMBER: _ClassVar[int]
    SLA_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    COMMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    POSSIBLE_DUPLICATE_OF_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_REPORTER_FIELD_NUMBER: _ClassVar[int]
    CONTACT_DATA_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    category: str
    service_code: str
    opd_code: str
    priority: Priority
    status: RequestStatus
    version: int
    title: str
    description: str
    location: _common_pb2.GeoPoint
    address: str
    media_url: str
    reporter: Reporter
    assignee: str
    idempotency_key: str
    submitted_by_client: str
    requested_time: _timestamp_pb2.Timestamp
    updated_time: _timestamp_pb2.Timestamp
    acknowledged_time: _timestamp_pb2.Timestamp
    resolved_time: _timestamp_pb2.Timestamp
    closed_time: _timestamp_pb2.Timestamp
    sla: SlaStatus
    history: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    comment_count: int
    possible_duplicate_of: _containers.RepeatedScalarFieldContainer[str]
    encrypted_reporter: EncryptedContact
    contact_data: ContactDataState
    def __init__(self, request_id: _Optional[str] = ..., category: _Optional[str] = ..., service_code: _Optional[str] = ..., opd_code: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ..., status: _Optional[_Union[RequestStatus, str]] = ..., version: _Optional[int] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., location: _Optional[_Union[_common_pb2.GeoPoint, _Mapping]] = ..., address: _Optional[str] = ..., media_url: _Optional[str] = ..., reporter: _Optional[_Union[Reporter, _Mapping]] = ..., assignee: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., submitted_by_client: _Optional[str] = ..., requested_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sla: _Optional[_Union[SlaStatus, _Mapping]] = ..., history: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ..., comment_count: _Optional[int] = ..., possible_duplicate_of: _Optional[_Iterable[str]] = ..., encrypted_reporter: _Optional[_Union[EncryptedContact, _Mapping]] = ..., contact_data: _Optional[_Union[ContactDataState, str]] = ...) -> None: ...

class RequestStats(_message.Message):
    __slots__ = ("scope", "key", "open", "overdue", "submitted_today", "resolved_today", "sla_breaches_today", "median_time_to_acknowledge", "p90_time_to_acknowledge", "median_time_to_resolve", "p90_time_to_resolve", "total", "updated_time")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_TODAY_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_TODAY_FIELD_NUMBER: _ClassVar[int]
    SLA_BREACHES_TODAY_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_TIME_TO_ACKNOWLEDGE_FIELD_NUMBER: _ClassVar[int]
    P90_TIME_TO_ACKNOWLEDGE_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_TIME_TO_RESOLVE_FIELD_NUMBER: _ClassVar[int]
    P90_TIME_TO_RESOLVE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    scope: StatsScope
    key: str
    open: int
    overdue: int
    submitted_today: int
    resolved_today: int
    sla_breaches_today: int
    median_time_to_acknowledge: _duration_pb2.Duration
    p90_time_to_acknowledge: _duration_pb2.Duration
    median_time_to_resolve: _duration_pb2.Duration
    p90_time_to_resolve: _duration_pb2.Duration
    total: int
    updated_time: _timestamp_pb2.Timestamp
    def __init__(self, scope: _Optional[_Union[StatsScope, str]] = ..., key: _Optional[str] = ..., open: _Optional[int] = ..., overdue: _Optional[int] = ..., submitted_today: _Optional[int] = ..., resolved_today: _Optional[int] = ..., sla_breaches_today: _Optional[int] = ..., median_time_to_acknowledge: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., p90_time_to_acknowledge: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., median_time_to_resolve: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., p90_time_to_resolve: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., total: _Optional[int] = ..., updated_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
