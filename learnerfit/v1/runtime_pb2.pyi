from learnerfit.v1 import bus_pb2 as _bus_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class DeadLetter(_message.Message):
    __slots__ = ("id", "stage", "reason", "transient", "source_topic", "source_partition", "source_offset", "record_id", "record_type", "problem_id", "value", "attempts", "replayed_at_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRANSIENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PARTITION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    stage: str
    reason: str
    transient: bool
    source_topic: str
    source_partition: int
    source_offset: int
    record_id: str
    record_type: str
    problem_id: str
    value: bytes
    attempts: int
    replayed_at_ms: int
    def __init__(self, id: _Optional[str] = ..., stage: _Optional[str] = ..., reason: _Optional[str] = ..., transient: _Optional[bool] = ..., source_topic: _Optional[str] = ..., source_partition: _Optional[int] = ..., source_offset: _Optional[int] = ..., record_id: _Optional[str] = ..., record_type: _Optional[str] = ..., problem_id: _Optional[str] = ..., value: _Optional[bytes] = ..., attempts: _Optional[int] = ..., replayed_at_ms: _Optional[int] = ...) -> None: ...

class RateLease(_message.Message):
    __slots__ = ("id", "limit", "requests", "tokens", "at_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    limit: str
    requests: int
    tokens: int
    at_ms: int
    def __init__(self, id: _Optional[str] = ..., limit: _Optional[str] = ..., requests: _Optional[int] = ..., tokens: _Optional[int] = ..., at_ms: _Optional[int] = ...) -> None: ...
